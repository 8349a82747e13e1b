/*
 * exchange: the route action -> handler table, a worker's handler slots,
 * and the two directions of an exchange (handler.h): the front end drives
 * the handler through wr_exchange_start/proceed/recv_body/stop, the handler
 * answers through the wr_exchange_* sink calls, which forward to the front
 * end's struct wr_exchange_sink.
 *
 * Not here: reading, framing or writing (the front ends), answering
 * (the handlers). Invariants: this file is where the reentrancy rules of
 * handler.h are checked. Every driver function tests is_disposed before it
 * calls the handler (a disposed exchange is never called into, in release
 * builds too); debug builds also assert that no handler callback runs from
 * inside a sink call, that stop runs once and never from inside a
 * callback, and that no sink call follows the end.
 */
#include "weir/handler.h"

#include <assert.h>
#include <string.h>
#include <unistd.h>

#include "weir/cache.h"
#include "weir/compress_filter.h"
#include "weir/error_page.h"
#include "weir/proxy.h"
#include "weir/redirect.h"
#include "weir/static.h"

/* Unit tests route these to cmocka's mock_assert (tests/unit/test_exchange.c). */
#ifndef WR_EXCHANGE_ASSERT
#define WR_EXCHANGE_ASSERT(cond) assert(cond)
#endif

const struct wr_handler *wr_handler_for(int action)
{
    switch (action) {
    case WR_ACTION_STATIC:
        return &wr_static_handler;
    case WR_ACTION_RETURN:
        return &wr_return_handler;
    case WR_ACTION_REDIRECT:
        return &wr_redirect_handler;
    case WR_ACTION_PROXY:
        return &wr_proxy_handler;
    case WR_HANDLER_CACHE:
        return &wr_cache_handler;
    default:
        return NULL;
    }
}

int wr_handler_slot(const struct wr_route *route)
{
    if (route->action == WR_ACTION_PROXY && route->cache)
        return WR_HANDLER_CACHE;
    return (int)route->action;
}

/* ---- a worker's handlers ---------------------------------------------- */

int wr_handlers_init(struct wr_handlers *hs, const struct wr_handler_env *env)
{
    memset(hs, 0, sizeof(*hs));
    for (int a = 0; a < WR_HANDLER_SLOTS; a++) {
        struct wr_handler_worker *hw = &hs->slots[a];
        hw->handler = wr_handler_for(a);
        hw->env = env;
        hw->peers = hs;
        if (hw->handler && hw->handler->worker_init && hw->handler->worker_init(hw) < 0) {
            hw->handler = NULL; /* nothing to tear down in the slot that failed */
            wr_handlers_fini(hs);
            return -1;
        }
    }
    return 0;
}

void wr_handlers_fini(struct wr_handlers *hs)
{
    /* In reverse: the cache's exchanges use the proxy's state. */
    for (int a = WR_HANDLER_SLOTS - 1; a >= 0; a--) {
        struct wr_handler_worker *hw = &hs->slots[a];
        if (hw->handler && hw->handler->worker_fini)
            hw->handler->worker_fini(hw);
        hw->handler = NULL;
        hw->state = NULL;
    }
}

int wr_handlers_config_changed(struct wr_handlers *hs, const struct wr_config *cfg)
{
    for (int a = 0; a < WR_HANDLER_SLOTS; a++) {
        struct wr_handler_worker *hw = &hs->slots[a];
        if (hw->handler && hw->handler->config_changed && hw->handler->config_changed(hw, cfg) < 0)
            return -1; /* only proxy can refuse, and nothing before it changes state */
    }
    return 0;
}

void wr_handlers_snapshots_in_use(struct wr_handlers *hs, const struct wr_config *const *cfgs,
                                  size_t n)
{
    for (int a = 0; a < WR_HANDLER_SLOTS; a++) {
        struct wr_handler_worker *hw = &hs->slots[a];
        if (hw->handler && hw->handler->snapshots_in_use)
            hw->handler->snapshots_in_use(hw, cfgs, n);
    }
}

void wr_handlers_tick(struct wr_handlers *hs, uint64_t now_ms)
{
    for (int a = 0; a < WR_HANDLER_SLOTS; a++) {
        struct wr_handler_worker *hw = &hs->slots[a];
        if (hw->handler && hw->handler->tick)
            hw->handler->tick(hw, now_ms);
    }
}

void *wr_handlers_state(const struct wr_handlers *hs, int action)
{
    if (action < 0 || action >= WR_HANDLER_SLOTS)
        return NULL;
    return hs->slots[action].state;
}

/* ---- error pages ------------------------------------------------------- */

/* The rules of an error nobody routed (404 without a route): none. */
static const struct wr_route no_rules;

const struct wr_route *wr_exchange_rules_route(const struct wr_exchange *ex)
{
    if (!ex->error.status)
        return ex->route;
    return ex->error.route ? ex->error.route : &no_rules;
}

int wr_exchange_answer_status(const struct wr_exchange *ex, int status)
{
    return ex->error.status ? ex->error.status : status;
}

void wr_exchange_error_fields(struct wr_resp *r, const struct wr_exchange_error *e)
{
    if (e->status == 405 && e->allow)
        wr_resp_field(r, WR_HTTP_FIELD_ALLOW, wr_str_from_cstr(e->allow));
    if (e->status == 429 && e->retry_after_s)
        wr_resp_field_u64(r, WR_HTTP_FIELD_RETRY_AFTER, e->retry_after_s);
    if (e->status == 401 && e->route && e->route->auth_challenge)
        wr_resp_header(r, "WWW-Authenticate", wr_str_from_cstr(e->route->auth_challenge));
}

/* An error page's answer in ex->resp: true when it is the page (a 200),
 * which then carries the original status and its error fields. */
static bool take_page(struct wr_exchange *ex)
{
    struct wr_resp *r = ex->resp;
    if (!wr_error_page_is_served(r->status))
        return false;
    r->status = ex->error.status;
    wr_exchange_error_fields(r, &ex->error);
    return true;
}

/* Drops the body a refused one-shot answer handed over (respond's
 * contract: the front end would own it). */
static void drop_body(struct wr_resp *r)
{
    if (r->body_ref)
        r->body_unref(r->body_ref);
    else if (r->file_fd >= 0)
        close(r->file_fd);
    r->body_ref = NULL;
    r->file_fd = -1;
}

/* ---- the front end drives --------------------------------------------- */

void wr_exchange_init(struct wr_exchange *ex, const struct wr_handler *h, void *worker_state,
                      const struct wr_exchange_sink *sink, void *front)
{
    ex->handler = h;
    ex->worker_state = worker_state;
    ex->state = NULL;
    ex->log = (struct wr_exchange_log){0};
    ex->sink = sink;
    ex->front = front;
    ex->is_started = ex->is_head_sent = ex->is_ended = ex->is_disposed = false;
    ex->is_in_sink = ex->is_in_handler = false;
    ex->end = 0;
    ex->is_start_deferred = false;
    ex->upstream_resp = NULL;
    ex->is_cache_fill = false;
    ex->upstream_fields = (struct wr_str){NULL, 0};
}

/* A handler callback may run: live, and not from inside a sink call
 * (rule 1) nor from inside another callback. */
static bool may_call(const struct wr_exchange *ex)
{
    WR_EXCHANGE_ASSERT(!ex->is_in_sink);
    WR_EXCHANGE_ASSERT(!ex->is_in_handler);
    WR_EXCHANGE_ASSERT(!ex->is_disposed);
    return !ex->is_disposed;
}

int wr_exchange_start(struct wr_exchange *ex)
{
    WR_EXCHANGE_ASSERT(!ex->is_started);
    ex->is_started = true;
    if (!ex->handler || !ex->handler->start)
        return 500;
    if (!may_call(ex))
        return 500;
    ex->is_in_handler = true;
    int status = ex->handler->start(ex);
    ex->is_in_handler = false;
    /* An error status means no sink call was made. */
    WR_EXCHANGE_ASSERT(status == 0 || !ex->is_head_sent);
    return status;
}

void wr_exchange_proceed(struct wr_exchange *ex)
{
    if (ex->zf && !ex->is_disposed) {
        /* The filter's output was written: it codes on, and says when the
         * handler's own proceed is due. */
        ex->is_in_sink = true;
        bool is_handler_due = wr_zfilter_proceed(ex);
        ex->is_in_sink = false;
        if (!is_handler_due)
            return;
    }
    if (!may_call(ex) || ex->is_ended || !ex->handler->proceed)
        return;
    ex->is_in_handler = true;
    ex->handler->proceed(ex);
    ex->is_in_handler = false;
}

ssize_t wr_exchange_recv_body(struct wr_exchange *ex, const char *p, size_t n, bool is_last)
{
    /* An error page's internal request has no body: the original's is
     * read and dropped. */
    if (!may_call(ex) || ex->is_ended || !ex->handler->recv_body || ex->error.status)
        return (ssize_t)n;
    ex->is_in_handler = true;
    ssize_t k = ex->handler->recv_body(ex, p, n, is_last);
    ex->is_in_handler = false;
    return k;
}

bool wr_exchange_wants_body(const struct wr_exchange *ex)
{
    return ex->handler && ex->handler->recv_body && !ex->error.status;
}

bool wr_exchange_can_recv_body(struct wr_exchange *ex)
{
    if (!may_call(ex) || ex->is_ended)
        return false;
    if (!ex->handler->can_recv_body)
        return true;
    ex->is_in_handler = true;
    bool can = ex->handler->can_recv_body(ex);
    ex->is_in_handler = false;
    return can;
}

void wr_exchange_upgraded(struct wr_exchange *ex, const struct wr_exchange_tunnel *t)
{
    if (!may_call(ex) || ex->is_ended || !ex->handler->upgraded)
        return;
    ex->is_in_handler = true;
    ex->handler->upgraded(ex, t);
    ex->is_in_handler = false;
}

void wr_exchange_stop(struct wr_exchange *ex)
{
    WR_EXCHANGE_ASSERT(!ex->is_in_sink && !ex->is_in_handler); /* rule 2 */
    WR_EXCHANGE_ASSERT(!ex->is_disposed);                      /* exactly once */
    if (ex->is_disposed)
        return;
    if (ex->is_started && ex->handler && ex->handler->stop)
        ex->handler->stop(ex);
    wr_zfilter_free(ex);
    ex->is_disposed = true;
    ex->state = NULL;
}

/* ---- the handler answers ---------------------------------------------- */

/* A sink call may run: the exchange is live and has not ended (rule 4).
 * Refused calls do nothing, in release builds too. */
static bool enter_sink(struct wr_exchange *ex)
{
    WR_EXCHANGE_ASSERT(ex->is_started && !ex->is_disposed && !ex->is_ended);
    WR_EXCHANGE_ASSERT(!ex->is_in_sink);
    if (!ex->is_started || ex->is_disposed || ex->is_ended || ex->is_in_sink)
        return false;
    ex->is_in_sink = true;
    return true;
}

void wr_exchange_respond(struct wr_exchange *ex)
{
    if (!enter_sink(ex))
        return;
    WR_EXCHANGE_ASSERT(!ex->is_head_sent);
    if (ex->error.status && !take_page(ex)) {
        /* Not the page: the built-in one goes out (no second redirect). */
        drop_body(ex->resp);
        ex->is_ended = true;
        ex->end = ex->error.status;
        ex->sink->end(ex, ex->end);
        ex->is_in_sink = false;
        return;
    }
    ex->is_head_sent = true;
    ex->log.status = ex->resp->status;
    if (ex->zw && wr_zfilter_begin(ex, true)) {
        /* Coded as it goes out: the filter ends the exchange once the
         * last bytes are handed over (the front end sees send_head, sends
         * and end, not respond). */
        wr_zfilter_respond(ex);
    } else {
        ex->is_ended = true;
        ex->end = WR_EXCHANGE_COMPLETE;
        ex->sink->respond(ex);
    }
    ex->is_in_sink = false;
}

void wr_exchange_send_head(struct wr_exchange *ex)
{
    if (!enter_sink(ex))
        return;
    WR_EXCHANGE_ASSERT(!ex->is_head_sent);
    /* An error page's handler ends with a status instead of sending another. */
    WR_EXCHANGE_ASSERT(!ex->error.status || wr_error_page_is_served(ex->resp->status));
    if (ex->error.status)
        take_page(ex);
    ex->is_head_sent = true;
    ex->log.status = ex->resp->status;
    if (ex->zw)
        wr_zfilter_begin(ex, false);
    ex->sink->send_head(ex);
    ex->is_in_sink = false;
}

bool wr_exchange_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final)
{
    if (!enter_sink(ex))
        return true; /* nothing of iov is kept */
    WR_EXCHANGE_ASSERT(ex->is_head_sent && n <= WR_EXCHANGE_MAX_IOV);
    bool is_done;
    if (ex->zf) {
        is_done = wr_zfilter_send(ex, iov, n, is_final); /* counts what it sends */
    } else {
        for (int i = 0; i < n; i++)
            ex->log.body_bytes += iov[i].iov_len;
        is_done = ex->sink->send(ex, iov, n, is_final);
    }
    ex->is_in_sink = false;
    return is_done;
}

void wr_exchange_body_room(struct wr_exchange *ex)
{
    if (!enter_sink(ex))
        return;
    ex->sink->body_room(ex);
    ex->is_in_sink = false;
}

void wr_exchange_end(struct wr_exchange *ex, int how)
{
    if (!enter_sink(ex))
        return;
    WR_EXCHANGE_ASSERT(how < 300 || !ex->is_head_sent);
    if (ex->zf && how == WR_EXCHANGE_COMPLETE) {
        /* The coded stream finishes first: the filter ends the exchange,
         * now or once the front end took its last bytes. */
        wr_zfilter_end(ex);
        ex->is_in_sink = false;
        return;
    }
    ex->is_ended = true;
    ex->end = how;
    ex->sink->end(ex, how);
    ex->is_in_sink = false;
}

void wr_exchange_upgrade(struct wr_exchange *ex, const struct iovec *iov, int n)
{
    if (!enter_sink(ex))
        return;
    WR_EXCHANGE_ASSERT(!ex->is_head_sent && n <= WR_EXCHANGE_MAX_IOV);
    ex->is_head_sent = true;
    ex->log.status = ex->resp->status;
    ex->sink->upgrade(ex, iov, n);
    ex->is_in_sink = false;
}
