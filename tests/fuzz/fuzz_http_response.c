/*
 * Fuzz target for wr_http_parse_response (heads from upstream servers):
 * any bytes, parsed whole and then grown one byte at a time with the
 * prev_len hint, from exact-size heap copies. Both ways must agree on the
 * outcome and the head length, and every slice must lie inside the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool inside(struct wr_str s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + len);
}

static ssize_t parse_copy(const uint8_t *data, size_t len, size_t prev,
                          struct wr_http_response *resp)
{
    static const struct wr_http_limits limits = {.max_head_bytes = 4096};
    char *buf = malloc(len ? len : 1);
    check(buf != NULL);
    memcpy(buf, data, len);
    ssize_t n = wr_http_parse_response(buf, len, prev, &limits, resp);
    if (n >= 0) {
        check((size_t)n <= len && resp->status >= 100 && resp->status <= 999);
        check(!(resp->is_chunked && resp->has_content_length));
        check(inside(resp->reason, buf, len));
        for (size_t i = 0; i < resp->n_headers; i++)
            check(inside(resp->headers[i].name, buf, len) &&
                  inside(resp->headers[i].value, buf, len) && resp->headers[i].name.len > 0);
    }
    free(buf);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct wr_http_response whole, step;
    ssize_t a = parse_copy(data, size, 0, &whole);
    ssize_t b = WR_AGAIN;
    size_t prev = 0;
    for (size_t len = 1; len <= size && b == WR_AGAIN; len++) {
        b = parse_copy(data, len, prev, &step);
        prev = len;
    }
    if (size == 0)
        b = parse_copy(data, 0, 0, &step);
    if (a >= 0) {
        check(b == a && step.status == whole.status && step.n_headers == whole.n_headers &&
              step.content_length == whole.content_length && step.is_chunked == whole.is_chunked);
    } else if (a == WR_ERROR) {
        check(b == WR_ERROR);
    } else {
        check(b == WR_AGAIN);
    }
    return 0;
}
