/*
 * Unit tests for exchange.c: the handler contract of handler.h, with a fake
 * handler driven by a fake front end. Issue 14: proceed is never delivered
 * from inside a sink call, stop runs exactly once, a disposed exchange is
 * never called into, no sink call follows the end; and the route action ->
 * handler table.
 *
 * exchange.c is included so that its checks report through cmocka's
 * mock_assert (expect_assert_failure) instead of aborting; its object from
 * weir_core is then not linked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#define WR_EXCHANGE_ASSERT(cond) mock_assert((int)(cond), #cond, __FILE__, __LINE__)
#include "../../src/exchange.c"

/* ---- the fake front end ------------------------------------------------ */

struct fake_front {
    bool is_full;          /* send keeps the bytes: proceed is owed */
    bool owes_proceed;
    bool is_reentrant;     /* a buggy front end: calls proceed from inside send */
    int n_respond, n_head, n_send, n_end, n_body_room;
    int end;
    size_t bytes;
    bool saw_final;
};

static void fe_respond(struct wr_exchange *ex)
{
    ((struct fake_front *)ex->front)->n_respond++;
}

static void fe_send_head(struct wr_exchange *ex)
{
    ((struct fake_front *)ex->front)->n_head++;
}

static bool fe_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final)
{
    struct fake_front *fe = ex->front;
    fe->n_send++;
    for (int i = 0; i < n; i++)
        fe->bytes += iov[i].iov_len;
    fe->saw_final |= is_final;
    if (fe->is_reentrant)
        wr_exchange_proceed(ex); /* forbidden: rule 1 */
    fe->owes_proceed = fe->is_full;
    return !fe->is_full;
}

static void fe_body_room(struct wr_exchange *ex)
{
    ((struct fake_front *)ex->front)->n_body_room++;
}

static void fe_end(struct wr_exchange *ex, int how)
{
    struct fake_front *fe = ex->front;
    fe->n_end++;
    fe->end = how;
}

static const struct wr_exchange_sink fake_sink = {
    .respond = fe_respond,
    .send_head = fe_send_head,
    .send = fe_send,
    .body_room = fe_body_room,
    .end = fe_end,
};

/* The front end's next event: deliver what is owed, dispose what ended. */
static void fe_turn(struct wr_exchange *ex)
{
    struct fake_front *fe = ex->front;
    if (fe->owes_proceed) {
        fe->owes_proceed = false;
        wr_exchange_proceed(ex);
    }
    if (ex->is_ended && !ex->is_disposed)
        wr_exchange_stop(ex);
}

/* ---- the fake handler --------------------------------------------------- */

enum mode { ONE_SHOT, STREAM, REFUSE, SEND_AFTER_END };

struct fake_handler {
    enum mode mode;
    int n_start, n_proceed, n_recv, n_stop;
};

static struct fake_handler fh;

static int fh_start(struct wr_exchange *ex)
{
    fh.n_start++;
    ex->state = &fh;
    if (fh.mode == REFUSE)
        return 404;
    if (fh.mode == ONE_SHOT) {
        wr_exchange_respond(ex);
        return 0;
    }
    wr_exchange_send_head(ex);
    struct iovec iov = {(void *)"hello", 5};
    wr_exchange_send(ex, &iov, 1, false);
    if (fh.mode == SEND_AFTER_END) {
        wr_exchange_end(ex, WR_EXCHANGE_COMPLETE);
        wr_exchange_send(ex, &iov, 1, true); /* forbidden: rule 4 */
    }
    return 0;
}

static void fh_proceed(struct wr_exchange *ex)
{
    fh.n_proceed++;
    struct iovec iov = {(void *)"world", 5};
    wr_exchange_send(ex, &iov, 1, true);
    wr_exchange_end(ex, WR_EXCHANGE_COMPLETE);
}

static ssize_t fh_recv(struct wr_exchange *ex, const char *p, size_t n, bool is_last)
{
    (void)ex;
    (void)p;
    (void)is_last;
    fh.n_recv++;
    return (ssize_t)n;
}

static void fh_stop(struct wr_exchange *ex)
{
    assert_ptr_equal(ex->state, &fh); /* still the handler's while it disposes */
    fh.n_stop++;
}

static const struct wr_handler fake_handler = {
    .name = "fake",
    .start = fh_start,
    .proceed = fh_proceed,
    .recv_body = fh_recv,
    .stop = fh_stop,
};

static struct wr_resp resp;

static void setup(struct wr_exchange *ex, struct fake_front *fe, enum mode mode)
{
    memset(&fh, 0, sizeof(fh));
    fh.mode = mode;
    memset(fe, 0, sizeof(*fe));
    memset(ex, 0, sizeof(*ex));
    wr_resp_init(&resp, NULL, 0);
    resp.status = 200;
    ex->resp = &resp;
    wr_exchange_init(ex, &fake_handler, NULL, &fake_sink, fe);
}

/* A one-shot handler answers inside start; the front end disposes it once. */
static void issue_14_exchange_one_shot(void **state)
{
    (void)state;
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, ONE_SHOT);
    assert_int_equal(wr_exchange_start(&ex), 0);
    assert_int_equal(fe.n_respond, 1);
    assert_true(ex.is_ended && ex.is_head_sent);
    assert_int_equal(ex.end, WR_EXCHANGE_COMPLETE);
    assert_int_equal(ex.log.status, 200);
    assert_int_equal(fh.n_stop, 0);
    fe_turn(&ex);
    assert_int_equal(fh.n_stop, 1);
    assert_true(ex.is_disposed);
    assert_null(ex.state);
}

/* A send the sink could not finish owes a proceed, delivered from the
 * front end's next event only; the body counts reach the log record. */
static void issue_14_exchange_proceed_deferred(void **state)
{
    (void)state;
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, STREAM);
    fe.is_full = true;
    assert_int_equal(wr_exchange_start(&ex), 0);
    assert_int_equal(fe.n_head, 1);
    assert_int_equal(fe.n_send, 1);
    assert_true(fe.owes_proceed);
    assert_int_equal(fh.n_proceed, 0); /* not from inside send */
    assert_false(ex.is_ended);
    fe.is_full = false;
    fe_turn(&ex);
    assert_int_equal(fh.n_proceed, 1);
    assert_true(fe.saw_final);
    assert_int_equal(fe.n_end, 1);
    assert_int_equal(fe.end, WR_EXCHANGE_COMPLETE);
    assert_int_equal(ex.log.body_bytes, 10);
    assert_int_equal(fh.n_stop, 1);
    assert_true(ex.is_disposed);
    fe_turn(&ex); /* nothing more happens */
    assert_int_equal(fh.n_proceed, 1);
    assert_int_equal(fh.n_stop, 1);
}

/* After stop: every driver call is refused (asserted), the handler never
 * hears of it, and a second stop is caught. */
static void issue_14_exchange_disposed(void **state)
{
    (void)state;
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, ONE_SHOT);
    assert_int_equal(wr_exchange_start(&ex), 0);
    wr_exchange_stop(&ex);
    expect_assert_failure(wr_exchange_proceed(&ex));
    expect_assert_failure(wr_exchange_recv_body(&ex, "x", 1, true));
    expect_assert_failure(wr_exchange_stop(&ex));
    assert_int_equal(fh.n_proceed, 0);
    assert_int_equal(fh.n_recv, 0);
    assert_int_equal(fh.n_stop, 1);
}

/* A front end that calls the handler back from inside a sink call is
 * caught at once. */
static void issue_14_exchange_no_reentry(void **state)
{
    (void)state;
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, STREAM);
    fe.is_reentrant = true;
    expect_assert_failure(wr_exchange_start(&ex));
    assert_int_equal(fh.n_proceed, 0);
}

/* A handler that answers after its end is caught. */
static void issue_14_exchange_no_send_after_end(void **state)
{
    (void)state;
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, SEND_AFTER_END);
    expect_assert_failure(wr_exchange_start(&ex));
    assert_int_equal(fe.n_send, 1); /* the second send never reached the front end */
}

/* An error status from start: no sink call; stop still runs once. */
static void issue_14_exchange_refused(void **state)
{
    (void)state;
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, REFUSE);
    assert_int_equal(wr_exchange_start(&ex), 404);
    assert_int_equal(fe.n_respond + fe.n_head + fe.n_send + fe.n_end, 0);
    assert_false(ex.is_head_sent);
    wr_exchange_stop(&ex);
    assert_int_equal(fh.n_stop, 1);
}

/* Request body: to recv_body while live; a handler without one takes all. */
static void issue_14_exchange_body(void **state)
{
    (void)state;
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, STREAM);
    fe.is_full = true;
    assert_int_equal(wr_exchange_start(&ex), 0);
    assert_true(wr_exchange_wants_body(&ex));
    assert_true(wr_exchange_can_recv_body(&ex)); /* no can_recv_body: yes */
    assert_int_equal(wr_exchange_recv_body(&ex, "abc", 3, true), 3);
    assert_int_equal(fh.n_recv, 1);
    wr_exchange_body_room(&ex);
    assert_int_equal(fe.n_body_room, 1);
    fe_turn(&ex);
    assert_true(ex.is_disposed);

    static const struct wr_handler bodiless = {.name = "bodiless", .start = fh_start};
    setup(&ex, &fe, ONE_SHOT);
    wr_exchange_init(&ex, &bodiless, NULL, &fake_sink, &fe);
    assert_int_equal(wr_exchange_start(&ex), 0);
    assert_false(wr_exchange_wants_body(&ex));
    wr_exchange_stop(&ex);
}

/* Every route action has its handler; the table knows nothing else. */
static void issue_14_handler_table(void **state)
{
    (void)state;
    assert_string_equal(wr_handler_for(WR_ACTION_STATIC)->name, "static");
    assert_string_equal(wr_handler_for(WR_ACTION_PROXY)->name, "proxy");
    assert_string_equal(wr_handler_for(WR_ACTION_REDIRECT)->name, "redirect");
    assert_string_equal(wr_handler_for(WR_ACTION_RETURN)->name, "return");
    assert_null(wr_handler_for(0));
    assert_null(wr_handler_for(WR_HANDLER_SLOTS));
    for (int a = WR_ACTION_STATIC; a <= WR_ACTION_RETURN; a++)
        assert_non_null(wr_handler_for(a)->start);
    /* Only the proxy streams, takes a body and outlives start. */
    const struct wr_handler *proxy = wr_handler_for(WR_ACTION_PROXY);
    assert_non_null(proxy->proceed);
    assert_non_null(proxy->recv_body);
    assert_non_null(proxy->can_recv_body);
    assert_non_null(proxy->upgraded);
    assert_non_null(proxy->stop);
    assert_null(wr_handler_for(WR_ACTION_STATIC)->recv_body);
}

/* An error page's exchange (issue 21.1): a 200 goes out with the original
 * status and weir's error fields; any other answer is not the page (its
 * body dropped, the exchange ends with the original status for the front
 * end's built-in page); the request body never reaches the handler; the
 * response rules are the original route's (none when no route matched). */
static void issue_21_exchange_error_page(void **state)
{
    (void)state;
    static char buf[1024];
    static const struct wr_resp_clock clock = {0};
    struct wr_exchange ex;
    struct fake_front fe;
    setup(&ex, &fe, ONE_SHOT);
    wr_resp_init(&resp, buf, sizeof(buf));
    wr_resp_start(&resp, 200, &clock);
    struct wr_route page_route = {.name = "page"}, erred = {.name = "erred"};
    ex.route = &page_route;
    ex.error = (struct wr_exchange_error){.status = 405, .route = &erred, .allow = "GET, HEAD"};
    assert_ptr_equal(wr_exchange_rules_route(&ex), &erred);
    assert_int_equal(wr_exchange_answer_status(&ex, 200), 405);
    assert_false(wr_exchange_wants_body(&ex));
    assert_int_equal(wr_exchange_start(&ex), 0);
    assert_int_equal(fe.n_respond, 1);
    assert_int_equal(resp.status, 405);
    assert_int_equal(ex.log.status, 405);
    struct wr_str allow = wr_resp_field_value(&resp, WR_STR("Allow"));
    assert_int_equal(allow.len, 9);
    assert_memory_equal(allow.ptr, "GET, HEAD", 9);
    fe_turn(&ex);

    setup(&ex, &fe, ONE_SHOT);
    resp.status = 301; /* the page's route redirects: not the page */
    ex.error = (struct wr_exchange_error){.status = 404};
    assert_ptr_not_equal(wr_exchange_rules_route(&ex), NULL);
    assert_int_equal(wr_exchange_rules_route(&ex)->n_add_headers, 0);
    assert_int_equal(wr_exchange_start(&ex), 0);
    assert_int_equal(fe.n_respond, 0);
    assert_int_equal(fe.n_end, 1);
    assert_int_equal(fe.end, 404);
    assert_true(ex.is_ended);
    fe_turn(&ex);

    setup(&ex, &fe, STREAM);
    ex.error = (struct wr_exchange_error){.status = 502};
    assert_int_equal(wr_exchange_recv_body(&ex, "abc", 3, true), 3);
    assert_int_equal(fh.n_recv, 0); /* the page's request has no body */
    assert_int_equal(wr_exchange_start(&ex), 0);
    assert_int_equal(resp.status, 502);
    assert_int_equal(ex.log.status, 502);
    wr_exchange_stop(&ex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_14_exchange_one_shot),
        cmocka_unit_test(issue_14_exchange_proceed_deferred),
        cmocka_unit_test(issue_14_exchange_disposed),
        cmocka_unit_test(issue_14_exchange_no_reentry),
        cmocka_unit_test(issue_14_exchange_no_send_after_end),
        cmocka_unit_test(issue_14_exchange_refused),
        cmocka_unit_test(issue_14_exchange_body),
        cmocka_unit_test(issue_14_handler_table),
        cmocka_unit_test(issue_21_exchange_error_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
