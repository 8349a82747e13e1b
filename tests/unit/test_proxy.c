/*
 * Unit tests for proxy.c: which fields are hop-by-hop (RFC 9110 §7.6.1),
 * and (issue 14, point 5) the proxy handler's state machine, driven
 * through the handler interface (handler.h) by a fake front end: a test
 * sink that records the head, the payload and the end, can keep what it
 * is given until it calls proceed (a client that is slow to read), and
 * hands the request body over as the handler takes it (body_room). The
 * upstream is the test itself on 127.0.0.1 listening sockets; faults
 * under the pool's connection come from the fake stream (fake_stream.h).
 * The loop runs on the test thread, one EVLOOP_ONCE | EVLOOP_NONBLOCK
 * pass at a time: no threads, no sleeps. More end-to-end proxy behaviour
 * is in tests/integration/test_proxy*.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake_stream.h"
#include "weir/clock.h"
#include "weir/proxy.h"
#include "weir/timer.h"

static void test_fixed_names(void **state)
{
    (void)state;
    static const char *const hop[] = {"Connection", "keep-alive", "PROXY-CONNECTION", "TE",
                                      "Trailer", "transfer-encoding", "Upgrade"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        assert_true(wr_proxy_is_hop_header(wr_str_from_cstr(hop[i]), NULL, 0));
    static const char *const e2e[] = {"Cookie", "Set-Cookie", "Content-Type", "X-Request-Id",
                                      "Authorization", "Trailers", "TEx"};
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++)
        assert_false(wr_proxy_is_hop_header(wr_str_from_cstr(e2e[i]), NULL, 0));
}

static void test_connection_listed(void **state)
{
    (void)state;
    const struct wr_http_header fields[] = {
        {WR_STR("Connection"), WR_STR("keep-alive, X-Secret")},
        {WR_STR("connection"), WR_STR("x-other")},
        {WR_STR("X-Secret"), WR_STR("1")},
    };
    assert_true(wr_proxy_is_hop_header(WR_STR("x-secret"), fields, 3));
    assert_true(wr_proxy_is_hop_header(WR_STR("X-Other"), fields, 3));
    assert_false(wr_proxy_is_hop_header(WR_STR("X-Secret-2"), fields, 3));
    assert_false(wr_proxy_is_hop_header(WR_STR("Secret"), fields, 3));
}

/* Issue 18: the Connection fields are found once per message; a message
 * with more of them than that keeps counts every one. */
static void issue_18_many_connection_fields(void **state)
{
    (void)state;
    struct wr_http_header fields[8];
    static const char *const tokens[] = {"a-1", "a-2", "a-3", "a-4", "a-5", "a-6"};
    for (size_t i = 0; i < 6; i++)
        fields[i] = (struct wr_http_header){WR_STR("Connection"), wr_str_from_cstr(tokens[i])};
    fields[6] = (struct wr_http_header){WR_STR("A-6"), WR_STR("x")};
    fields[7] = (struct wr_http_header){WR_STR("B"), WR_STR("y")};
    for (size_t i = 0; i < 6; i++) {
        assert_true(wr_proxy_is_hop_header(wr_str_from_cstr(tokens[i]), fields, 8));
        assert_true(wr_proxy_is_hop_header(wr_str_from_cstr(tokens[i]), fields, i + 1));
    }
    assert_false(wr_proxy_is_hop_header(WR_STR("B"), fields, 8));
    assert_false(wr_proxy_is_hop_header(WR_STR("a-6"), fields, 5));
}

/* Names that CGI-style backends would read as another field are not
 * forwarded by default (issue 13.23). */
static void issue_13_underscore_names(void **state)
{
    (void)state;
    static const char *const with[] = {"Content_Length", "Transfer_Encoding",
                                       "X_Forwarded_For", "_", "X-A_", "_X"};
    static const char *const without[] = {"Content-Length", "X-Forwarded-For", "Host", "X", ""};
    for (size_t i = 0; i < sizeof(with) / sizeof(with[0]); i++)
        assert_true(wr_proxy_is_underscore_name(wr_str_from_cstr(with[i])));
    for (size_t i = 0; i < sizeof(without) / sizeof(without[0]); i++)
        assert_false(wr_proxy_is_underscore_name(wr_str_from_cstr(without[i])));
    /* Only the name's bytes count, not what follows it in the buffer. */
    assert_false(wr_proxy_is_underscore_name((struct wr_str){"X-Y_Z", 3}));
}

/* ---- the proxy's state machine (issue 14) -------------------------------- */

#define MAX_TURNS 2000  /* front-end events any case may need; every wait is bounded */
#define BODY_CAP (512 * 1024)

struct px {
    struct event_base *base;
    struct wr_config *cfg;
    struct wr_timer_wheel wheel;
    struct wr_resp_clock clock;
    struct wr_handler_env henv;
    struct wr_handler_worker hw;
    int lfd[2];                /* the upstream servers' listening sockets */
    int up;                    /* the upstream connection accepted (test's end), or -1 */
    int up_server;             /* which listener accepted it */
    char upreq[256 * 1024];    /* what the upstream received on it */
    size_t upreq_len;
    bool is_up_eof;

    /* the exchange and what the front end lends it */
    struct wr_exchange ex;
    struct wr_resp resp;
    char resp_buf[4096];
    char req_buf[1024];
    struct wr_http_request req;
    struct wr_tmpl_vars vars;
    struct wr_router_match match;
    struct wr_log_request subject;
    char scratch[4096];

    /* the fake sink */
    bool is_slow;              /* send keeps the bytes until the next turn's proceed */
    bool owes_proceed;
    struct iovec kept[WR_EXCHANGE_MAX_IOV];
    int n_kept;
    int n_head, n_send, n_end, n_proceed, n_body_room, status, end;
    bool saw_final, is_body_room_owed;
    char *body;                /* BODY_CAP: the payload the client would get */
    size_t body_len;
    char head_fields[1024];    /* the head's fields as sent */
};

static uint16_t listen_local(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(*fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(*fd, 16), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

static int setup(void **state)
{
    struct px *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->body = malloc(BODY_CAP);
    assert_non_null(f->body);
    fs_reset_all();
    uint16_t port0 = listen_local(&f->lfd[0]), port1 = listen_local(&f->lfd[1]);
    char text[1024];
    snprintf(text, sizeof(text),
             "[server]\nlisten = unix:/tmp/weir_test_proxy.sock\nworkers = 1\n"
             "access_log = off\nerror_log = stderr\n"
             "[upstream one]\nserver = 127.0.0.1:%u\nretries = 0\nkeepalive = 0\n"
             "[upstream two]\nserver = 127.0.0.1:%u\nserver = 127.0.0.1:%u\nretries = 1\n"
             "keepalive = 0\n"
             "[route one]\nmatch = prefix:/one\nproxy = one\n"
             "[route two]\nmatch = prefix:/two\nproxy = two\n",
             port0, port0, port1);
    struct wr_config_errors errs = {0};
    f->cfg = wr_config_parse_string(text, "test.ini", &errs);
    wr_config_errors_fini(&errs);
    assert_non_null(f->cfg);
    f->base = event_base_new();
    assert_non_null(f->base);
    wr_timer_wheel_init(&f->wheel, wr_clock_now_ms());
    wr_resp_clock_update(&f->clock, time(NULL), f->cfg->server.server_header);
    f->henv = (struct wr_handler_env){.base = f->base, .wheel = &f->wheel, .clock = &f->clock,
                                      .cfg = f->cfg};
    f->hw = (struct wr_handler_worker){.handler = &wr_proxy_handler, .env = &f->henv};
    assert_int_equal(wr_proxy_handler.worker_init(&f->hw), 0);
    f->up = -1;
    *state = f;
    return 0;
}

static void close_upstream(struct px *f)
{
    if (f->up >= 0)
        close(f->up);
    f->up = -1;
    f->upreq_len = 0;
    f->upreq[0] = '\0';
}

static int teardown(void **state)
{
    struct px *f = *state;
    if (f->ex.is_started && !f->ex.is_disposed)
        wr_exchange_stop(&f->ex);
    close_upstream(f);
    wr_proxy_handler.worker_fini(&f->hw);
    wr_timer_wheel_fini(&f->wheel);
    event_base_free(f->base);
    close(f->lfd[0]);
    close(f->lfd[1]);
    wr_config_unref(f->cfg);
    free(f->body);
    free(f);
    return 0;
}

/* ---- the fake front end ------------------------------------------------- */

static void keep_payload(struct px *f, const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++) {
        assert_true(f->body_len + iov[i].iov_len <= BODY_CAP);
        memcpy(f->body + f->body_len, iov[i].iov_base, iov[i].iov_len);
        f->body_len += iov[i].iov_len;
    }
}

static void fe_respond(struct wr_exchange *ex)
{
    (void)ex;
    fail_msg("the proxy answers over time, never at once");
}

static void fe_send_head(struct wr_exchange *ex)
{
    struct px *f = ex->front;
    f->n_head++;
    f->status = ex->resp->status;
    struct wr_str head = wr_resp_bytes(ex->resp);
    size_t n = head.len < sizeof(f->head_fields) - 1 ? head.len : sizeof(f->head_fields) - 1;
    memcpy(f->head_fields, head.ptr, n);
    f->head_fields[n] = '\0';
}

/* A slow client: the bytes stay borrowed until proceed; they are copied
 * only then, so a handler that reused its buffer early is caught. */
static bool fe_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final)
{
    struct px *f = ex->front;
    assert_false(f->owes_proceed); /* no send while the last one is kept */
    assert_int_equal(f->n_head, 1);
    f->n_send++;
    f->saw_final |= is_final;
    if (!f->is_slow) {
        keep_payload(f, iov, n);
        return true;
    }
    memcpy(f->kept, iov, (size_t)n * sizeof(*iov));
    f->n_kept = n;
    f->owes_proceed = true;
    return false;
}

static void fe_body_room(struct wr_exchange *ex)
{
    struct px *f = ex->front;
    f->n_body_room++;
    f->is_body_room_owed = true;
}

static void fe_end(struct wr_exchange *ex, int how)
{
    struct px *f = ex->front;
    f->n_end++;
    f->end = how;
}

static void fe_upgrade(struct wr_exchange *ex, const struct iovec *iov, int n)
{
    (void)ex;
    (void)iov;
    (void)n;
    fail_msg("no upgrade was asked for");
}

static const struct wr_exchange_sink fake_sink = {
    .respond = fe_respond,
    .send_head = fe_send_head,
    .send = fe_send,
    .body_room = fe_body_room,
    .end = fe_end,
    .upgrade = fe_upgrade,
};

/* Starts an exchange for the request head text (route by its path). */
static void start(struct px *f, const char *head)
{
    size_t len = strlen(head);
    assert_true(len < sizeof(f->req_buf));
    memcpy(f->req_buf, head, len);
    struct wr_http_limits limits = {.max_head_bytes = 8192};
    assert_int_equal(wr_http_parse_request(f->req_buf, len, 0, &limits, &f->req), (ssize_t)len);
    const struct wr_route *route = &f->cfg->routes[strncmp(f->req.path.ptr, "/two", 4) == 0];
    f->vars = (struct wr_tmpl_vars){.host = WR_STR("x"), .request_uri = f->req.target,
                                    .scheme = WR_STR("http"), .remote_addr = WR_STR("127.0.0.9"),
                                    .request_id = WR_STR("0123456789abcdef0123456789abcdef")};
    f->subject = (struct wr_log_request){.id = f->vars.request_id, .client = WR_STR("127.0.0.9"),
                                         .method = f->req.method, .target = f->req.target};
    f->match = (struct wr_router_match){.route = route};
    wr_resp_init(&f->resp, f->resp_buf, sizeof(f->resp_buf));
    f->ex = (struct wr_exchange){
        .req = &f->req, .route = route, .match = &f->match, .path = f->req.path,
        .vars = &f->vars, .clock = &f->clock, .resp = &f->resp, .scratch = f->scratch,
        .scratch_cap = sizeof(f->scratch), .log_subject = &f->subject, .conn_id = 1,
        .client_addr = WR_STR("127.0.0.9"),
        .has_body = f->req.is_chunked || (f->req.has_content_length && f->req.content_length > 0),
        .is_keep_alive = true, .max_head_bytes = f->cfg->limits.max_header_bytes,
    };
    f->n_head = f->n_send = f->n_end = f->n_proceed = f->n_body_room = f->status = 0;
    f->end = -1;
    f->body_len = 0;
    f->saw_final = f->owes_proceed = f->is_body_room_owed = false;
    wr_exchange_init(&f->ex, &wr_proxy_handler, f->hw.state, &fake_sink, f);
    assert_int_equal(wr_exchange_start(&f->ex), 0);
}

/* The upstream side: accept, and read what came. */
static void serve_upstream(struct px *f)
{
    for (int i = 0; i < 2 && f->up < 0; i++) {
        int fd = accept4(f->lfd[i], NULL, NULL, SOCK_NONBLOCK);
        if (fd >= 0) {
            f->up = fd;
            f->up_server = i;
            f->upreq_len = 0;
            f->is_up_eof = false;
        }
    }
    while (f->up >= 0 && !f->is_up_eof && f->upreq_len < sizeof(f->upreq) - 1) {
        ssize_t n = read(f->up, f->upreq + f->upreq_len, sizeof(f->upreq) - 1 - f->upreq_len);
        if (n == 0)
            f->is_up_eof = true;
        if (n <= 0)
            break;
        f->upreq_len += (size_t)n;
    }
    f->upreq[f->upreq_len] = '\0';
}

/* One event of the front end: the loop's pass, the upstream's side, then
 * what the front end owes (proceed after a slow send; stop after the end). */
static void turn(struct px *f)
{
    event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    serve_upstream(f);
    if (f->owes_proceed) {
        keep_payload(f, f->kept, f->n_kept);
        f->owes_proceed = false;
        f->n_proceed++;
        wr_exchange_proceed(&f->ex);
    }
}

static void turns(struct px *f, int n)
{
    for (int i = 0; i < n && !f->ex.is_ended; i++)
        turn(f);
}

/* Turns until the upstream holds a whole request head (bounded). */
static void until_request_head(struct px *f)
{
    for (int i = 0; i < MAX_TURNS && !strstr(f->upreq, "\r\n\r\n") && !f->ex.is_ended; i++)
        turn(f);
    assert_non_null(strstr(f->upreq, "\r\n\r\n"));
}

static void until_ended(struct px *f)
{
    turns(f, MAX_TURNS);
    assert_true(f->ex.is_ended);
    assert_int_equal(f->n_end, 1);
}

/* The front end disposes of the ended exchange, and the upstream goes. */
static void finish_exchange(struct px *f)
{
    wr_exchange_stop(&f->ex);
    close_upstream(f);
}

static void upstream_says(struct px *f, const char *p, size_t n)
{
    assert_int_equal(write(f->up, p, n), (ssize_t)n);
}

static const char get_one[] = "GET /one/x HTTP/1.1\r\nHost: x\r\n\r\n";
static const char resp_len[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
static const char resp_chunked[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n";

/* A response head (and body) split at every byte boundary: one head, the
 * payload whole, the end once, complete; Content-Length and chunked. */
static void issue_14_proxy_head_split_every_byte(void **state)
{
    struct px *f = *state;
    const char *const resps[] = {resp_len, resp_chunked};
    for (size_t r = 0; r < 2; r++) {
        size_t len = strlen(resps[r]);
        size_t head_len = (size_t)(strstr(resps[r], "\r\n\r\n") - resps[r]) + 4;
        for (size_t k = 1; k < len; k++) {
            start(f, get_one);
            until_request_head(f);
            assert_non_null(strstr(f->upreq, "GET /one/x HTTP/1.1\r\n"));
            upstream_says(f, resps[r], k);
            turns(f, 4);
            assert_false(f->ex.is_ended);
            if (k < head_len)
                assert_int_equal(f->n_head, 0);
            upstream_says(f, resps[r] + k, len - k);
            until_ended(f);
            assert_int_equal(f->end, WR_EXCHANGE_COMPLETE);
            assert_int_equal(f->n_head, 1);
            assert_int_equal(f->status, 200);
            assert_non_null(strstr(f->head_fields, "X-A: b\r\n"));
            assert_int_equal(f->body_len, 5);
            assert_memory_equal(f->body, "hello", 5);
            /* A Content-Length body's last bytes carry the end; a chunked
             * body's last chunk may come alone: the end call ends it then. */
            assert_true(f->saw_final || r == 1);
            finish_exchange(f);
        }
    }
}

/* The upstream closes after every prefix of its response: before the
 * whole head, a 502 for the front end to answer (no head went out); after
 * it, mid-body, BROKEN (the client must see the cut, never a forged end);
 * after the last byte, complete. */
static void issue_14_proxy_upstream_close_every_step(void **state)
{
    struct px *f = *state;
    size_t len = strlen(resp_len);
    size_t head_len = (size_t)(strstr(resp_len, "\r\n\r\n") - resp_len) + 4;
    for (size_t k = 0; k <= len; k++) {
        start(f, get_one);
        until_request_head(f);
        upstream_says(f, resp_len, k);
        close_upstream(f);
        until_ended(f);
        if (k < head_len) {
            assert_int_equal(f->end, 502);
            assert_int_equal(f->n_head, 0);
        } else if (k < len) {
            assert_int_equal(f->end, WR_EXCHANGE_BROKEN);
            assert_int_equal(f->n_head, 1);
            assert_false(f->saw_final);
        } else {
            assert_int_equal(f->end, WR_EXCHANGE_COMPLETE);
            assert_int_equal(f->body_len, 5);
        }
        finish_exchange(f);
    }
}

/* The same with a reset on the upstream connection at every read (4 bytes
 * a read), injected under the pool by the fake stream. */
static void issue_14_proxy_upstream_reset_every_read(void **state)
{
    struct px *f = *state;
    size_t len = strlen(resp_len);
    size_t head_len = (size_t)(strstr(resp_len, "\r\n\r\n") - resp_len) + 4;
    for (unsigned k = 0; k < len / 4 + 2; k++) {
        start(f, get_one);
        int fd = fs_last_connect_fd();
        assert_true(fd >= 0);
        fs_max_read(fd, 4);
        fs_on_read(fd, k, FS_RESET, 0);
        until_request_head(f);
        upstream_says(f, resp_len, len);
        until_ended(f);
        size_t got = 4 * (size_t)k; /* bytes read before the reset */
        if (got < head_len)
            assert_int_equal(f->end, 502);
        else if (got < len)
            assert_int_equal(f->end, WR_EXCHANGE_BROKEN);
        else
            assert_int_equal(f->end, WR_EXCHANGE_COMPLETE);
        assert_int_equal(fs_n_finis(fd), 1); /* the upstream connection closed once */
        finish_exchange(f);
    }
}

/* A GET whose first server closes before its head is retried on the
 * other one (retries = 1), which answers: complete, with both attempts in
 * the access log's upstream fields. */
static void issue_14_proxy_retry_before_head(void **state)
{
    struct px *f = *state;
    size_t head_len = (size_t)(strstr(resp_len, "\r\n\r\n") - resp_len) + 4;
    for (size_t k = 0; k < head_len; k++) {
        start(f, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
        until_request_head(f);
        int first = f->up_server;
        upstream_says(f, resp_len, k);
        close_upstream(f);
        until_request_head(f); /* the retry's */
        assert_int_equal(f->up_server, 1 - first);
        upstream_says(f, resp_len, strlen(resp_len));
        until_ended(f);
        if (f->end != WR_EXCHANGE_COMPLETE)
            fail_msg("first server closed after %zu bytes: end %d", k, f->end);
        assert_int_equal(f->body_len, 5);
        assert_string_equal(f->ex.log.upstream_status, "502, 200");
        finish_exchange(f);
    }
}

/* A client slower than the server: every send is kept until proceed (the
 * front end's EAGAIN); the proxy stops reading meanwhile and never sends
 * again before proceed, never reuses bytes it lent, and the payload
 * arrives whole and in order. */
static void issue_14_proxy_client_eagain_proceed(void **state)
{
    struct px *f = *state;
    enum { N = 200 * 1000 };
    char *payload = malloc(N);
    assert_non_null(payload);
    for (size_t i = 0; i < N; i++)
        payload[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    for (int chunked = 0; chunked <= 1; chunked++) {
        start(f, get_one);
        f->is_slow = true;
        until_request_head(f);
        char head[128];
        snprintf(head, sizeof(head), chunked ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                             : "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", N);
        upstream_says(f, head, strlen(head));
        /* The server writes as the socket takes it. */
        size_t sent = 0;
        char line[32];
        for (int i = 0; i < MAX_TURNS * 10 && !f->ex.is_ended; i++) {
            if (sent < N) {
                size_t piece = N - sent < 9000 ? N - sent : 9000;
                size_t k = (size_t)snprintf(line, sizeof(line), "%zx\r\n", piece);
                if (chunked && write(f->up, line, k) != (ssize_t)k)
                    fail_msg("the socket should take a chunk line");
                ssize_t w = write(f->up, payload + sent, piece);
                if (w > 0)
                    sent += (size_t)w;
                if (chunked) {
                    assert_int_equal(w, (ssize_t)piece); /* test's pieces fit the socket */
                    assert_int_equal(write(f->up, "\r\n", 2), 2);
                    if (sent == N)
                        assert_int_equal(write(f->up, "0\r\n\r\n", 5), 5);
                }
            }
            turn(f);
        }
        assert_true(f->ex.is_ended);
        assert_int_equal(f->end, WR_EXCHANGE_COMPLETE);
        assert_int_equal(f->body_len, N);
        assert_memory_equal(f->body, payload, N);
        assert_true(f->n_proceed > 1);
        f->is_slow = false;
        finish_exchange(f);
    }
    free(payload);
}

/* A request body handed over as the proxy takes it: the upstream writes
 * are short (1000 bytes) and some fail with EAGAIN, so recv_body takes
 * less than offered and body_room says when to go on; the server receives
 * the body whole (Content-Length), or re-chunked (chunked). */
static void issue_14_proxy_body_upload_room(void **state)
{
    struct px *f = *state;
    enum { N = 100 * 1000 };
    char *payload = malloc(N);
    assert_non_null(payload);
    for (size_t i = 0; i < N; i++)
        payload[i] = (char)('A' + (i * 13 + i / 777) % 26);
    for (int chunked = 0; chunked <= 1; chunked++) {
        char head[160];
        snprintf(head, sizeof(head),
                 chunked ? "POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         : "POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", N);
        start(f, head);
        int fd = fs_last_connect_fd();
        fs_max_write(fd, 1000);
        for (unsigned k = 2; k < 200; k += 7)
            fs_on_write(fd, k, FS_EAGAIN, 0);
        size_t off = 0;
        bool is_done = false;
        f->is_body_room_owed = true; /* try at once: the proxy says when it cannot */
        for (int i = 0; i < MAX_TURNS * 5 && !is_done; i++) {
            while (f->is_body_room_owed && !is_done) {
                f->is_body_room_owed = false;
                size_t piece = N - off < 4096 ? N - off : 4096;
                bool is_last = off + piece == N;
                ssize_t t = wr_exchange_recv_body(&f->ex, payload + off, piece, is_last);
                assert_true(t >= -1 && t <= (ssize_t)piece);
                if (t > 0)
                    off += (size_t)t;
                is_done = is_last && t == (ssize_t)piece;
                if (t == (ssize_t)piece && !is_done)
                    f->is_body_room_owed = true; /* took it all: offer the next */
            }
            turn(f);
        }
        assert_true(is_done);
        assert_true(f->n_body_room > 0);
        /* The server has it all once the last bytes arrive. */
        const char *want_end = chunked ? "0\r\n\r\n" : NULL;
        for (int i = 0; i < MAX_TURNS; i++) {
            const char *body = strstr(f->upreq, "\r\n\r\n");
            size_t have = body ? f->upreq_len - (size_t)(body + 4 - f->upreq) : 0;
            if (!chunked && have >= N)
                break;
            if (chunked && have >= 5 &&
                memcmp(f->upreq + f->upreq_len - 5, want_end, 5) == 0)
                break;
            turn(f);
        }
        const char *body = strstr(f->upreq, "\r\n\r\n") + 4;
        size_t body_len = f->upreq_len - (size_t)(body - f->upreq);
        if (!chunked) {
            assert_int_equal(body_len, N);
            assert_memory_equal(body, payload, N);
        } else {
            struct wr_http_chunked c;
            wr_http_chunked_init(&c);
            size_t at = 0, got = 0;
            while (!c.is_done) {
                struct wr_str data;
                ssize_t n = wr_http_chunked_parse(&c, body + at, body_len - at, &data);
                assert_true(n > 0);
                assert_memory_equal(data.ptr, payload + got, data.len);
                got += data.len;
                at += (size_t)n;
            }
            assert_int_equal(got, N);
            assert_int_equal(at, body_len);
        }
        upstream_says(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
        until_ended(f);
        assert_int_equal(f->end, WR_EXCHANGE_COMPLETE);
        assert_int_equal(f->body_len, 2);
        finish_exchange(f);
    }
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_names),
        cmocka_unit_test(test_connection_listed),
        cmocka_unit_test(issue_18_many_connection_fields),
        cmocka_unit_test(issue_13_underscore_names),
        cmocka_unit_test_setup_teardown(issue_14_proxy_head_split_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_proxy_upstream_close_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_proxy_upstream_reset_every_read, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_proxy_retry_before_head, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_proxy_client_eagain_proceed, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_proxy_body_upload_room, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
