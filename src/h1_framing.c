/*
 * h1_framing: HTTP/1 framing decisions and the head's framing fields (see
 * the header). Invariants: a response the client cannot delimit any other
 * way ends with the connection (is_keep_alive false); a body is never
 * announced for 1xx, 204 or 304 (RFC 9110 §6.4.1, §8.6).
 */
#include "weir/h1_framing.h"

#include <string.h>

#include "weir/str.h"

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

struct wr_h1_framing wr_h1_choose_framing(int status, bool is_head_req, bool has_length,
                                          int client_minor, bool is_keep_alive)
{
    struct wr_h1_framing f = {.is_keep_alive = is_keep_alive};
    if (!status_has_body(status))
        return f; /* 204 and 304 never carry a length of their own */
    if (is_head_req) {
        /* RFC 9110 §9.3.2: the fields a GET would have had, without a body. */
        f.has_length_field = has_length;
        return f;
    }
    if (has_length) {
        f.body = WR_H1_BODY_LENGTH;
        f.has_length_field = true;
    } else if (client_minor >= 1) {
        f.body = WR_H1_BODY_CHUNKED;
    } else {
        f.body = WR_H1_BODY_CLOSE; /* RFC 9112 §6.3: the close is the end */
        f.is_keep_alive = false;
    }
    return f;
}

size_t wr_h1_status_line(char *out, int status)
{
    /* Hot path: no printf. "HTTP/1.1 " + three digits + " " + reason + CRLF.
     * The everyday statuses are one copy of a constant line. */
    static const char ok[] = "HTTP/1.1 200 OK\r\n";
    static const char not_modified[] = "HTTP/1.1 304 Not Modified\r\n";
    if (status == 200) {
        memcpy(out, ok, sizeof(ok) - 1);
        return sizeof(ok) - 1;
    }
    if (status == 304) {
        memcpy(out, not_modified, sizeof(not_modified) - 1);
        return sizeof(not_modified) - 1;
    }
    if (status < 100 || status > 999)
        status = 500;
    const char *reason = wr_resp_reason(status);
    memcpy(out, "HTTP/1.1 ", 9);
    out[9] = (char)('0' + status / 100);
    out[10] = (char)('0' + status / 10 % 10);
    out[11] = (char)('0' + status % 10);
    out[12] = ' ';
    size_t n = strlen(reason);
    if (n > WR_RESP_STATUS_ROOM - 15)
        n = WR_RESP_STATUS_ROOM - 15; /* never: the table's reasons are short */
    memcpy(out + 13, reason, n);
    memcpy(out + 13 + n, "\r\n", 2);
    return 15 + n;
}

void wr_h1_finish_head(struct wr_resp *r, const struct wr_h1_framing *f, int client_minor)
{
    char line[WR_RESP_STATUS_ROOM];
    wr_resp_set_status_line(r, line, wr_h1_status_line(line, r->status));
    r->is_head_only = f->body == WR_H1_BODY_NONE;
    if (f->has_length_field) {
        wr_resp_raw(r, WR_STR("Content-Length: "));
        wr_resp_raw_u64(r, r->body_len);
        wr_resp_raw(r, WR_STR("\r\n"));
    }
    if (f->body == WR_H1_BODY_CHUNKED)
        wr_resp_raw(r, WR_STR("Transfer-Encoding: chunked\r\n"));
    if (f->is_upgrade)
        wr_resp_raw(r, WR_STR("Connection: upgrade\r\n"));
    else if (!f->is_keep_alive)
        wr_resp_raw(r, WR_STR("Connection: close\r\n"));
    else if (client_minor == 0)
        wr_resp_raw(r, WR_STR("Connection: keep-alive\r\n"));
    wr_resp_raw(r, WR_STR("\r\n"));
}

size_t wr_h1_chunk_size_line(char *out, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    for (size_t i = 0; i < k; i++)
        out[i] = tmp[k - 1 - i];
    out[k] = '\r';
    out[k + 1] = '\n';
    return k + 2;
}
