/*
 * poller: socketpairs watched through a real event base, run one
 * non-blocking pass at a time. Covers level-triggered readiness, pausing
 * (also of a socket whose peer is gone: no report while paused),
 * activation (merged, FIFO, never from inside the call, merged with a
 * readiness report), and forgetting an item from another's callback, in a
 * readiness batch and in an activation run: no call comes for it after
 * (issue 14: the HTTP/1 front end reads through it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weir/poller.h"

#define N_ITEMS 3

struct item {
    struct wr_poller_item it; /* first: the callback's item is the item */
    int fd, peer;
    int n_calls;
    bool is_watched;
    bool should_drain;         /* the callback reads what is there */
    struct item *forget;       /* the callback forgets this one */
    bool should_reactivate;    /* the callback activates itself (once) */
};

struct fx {
    struct event_base *base;
    struct wr_poller p;
    struct item items[N_ITEMS];
    int order[16];
    int n_order;
    int depth; /* callbacks in progress: never more than one */
};

static struct fx *the_fx; /* the callback's fixture (one test at a time) */

static void on_item(struct wr_poller_item *it)
{
    struct fx *f = the_fx;
    struct item *x = (struct item *)it;
    assert_int_equal(f->depth, 0);
    f->depth++;
    x->n_calls++;
    if (f->n_order < 16)
        f->order[f->n_order++] = (int)(x - f->items);
    if (x->should_drain) {
        char buf[256];
        for (int i = 0; i < 64 && read(x->fd, buf, sizeof(buf)) > 0; i++) {
        }
    }
    if (x->forget) {
        wr_poller_forget(&f->p, x->forget->fd, &x->forget->it, x->forget->is_watched);
        x->forget->is_watched = false;
        x->forget = NULL;
    }
    if (x->should_reactivate) {
        x->should_reactivate = false;
        int before = x->n_calls;
        wr_poller_activate(&f->p, &x->it);
        assert_int_equal(x->n_calls, before); /* not called from inside activate */
    }
    f->depth--;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(wr_poller_init(&f->p, f->base, on_item), 0);
    for (int i = 0; i < N_ITEMS; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        f->items[i] = (struct item){.fd = sv[0], .peer = sv[1]};
        wr_poller_item_init(&f->items[i].it);
    }
    the_fx = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < N_ITEMS; i++) {
        struct item *x = &f->items[i];
        wr_poller_forget(&f->p, x->fd, &x->it, x->is_watched);
        close(x->fd);
        if (x->peer >= 0)
            close(x->peer);
    }
    wr_poller_fini(&f->p);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* n passes of the loop, each one iteration that never blocks. */
static void pass(struct fx *f, int n)
{
    for (int i = 0; i < n; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
}

static void watch(struct fx *f, struct item *x, bool is_on)
{
    assert_int_equal(wr_poller_watch(&f->p, x->fd, &x->it, is_on), 0);
    x->is_watched = is_on;
}

static void poke(struct item *x)
{
    assert_int_equal(write(x->peer, "x", 1), 1);
}

/* Readable: called on every pass while bytes wait (level-triggered), no
 * more once they are read. */
static void issue_14_poller_level_triggered(void **state)
{
    struct fx *f = *state;
    struct item *a = &f->items[0];
    watch(f, a, true);
    pass(f, 3);
    assert_int_equal(a->n_calls, 0);
    poke(a);
    pass(f, 1);
    assert_int_equal(a->n_calls, 1);
    pass(f, 1);
    assert_int_equal(a->n_calls, 2); /* still readable: reported again */
    a->should_drain = true;
    pass(f, 1);
    assert_int_equal(a->n_calls, 3);
    pass(f, 3);
    assert_int_equal(a->n_calls, 3);
}

/* Unwatched: no call, whatever arrives, also once the peer is gone (epoll
 * would report EPOLLHUP on every pass to a socket still in its set); the
 * bytes are reported once it is watched again. */
static void issue_14_poller_pause(void **state)
{
    struct fx *f = *state;
    struct item *a = &f->items[0];
    watch(f, a, true);
    watch(f, a, false);
    poke(a);
    pass(f, 3);
    assert_int_equal(a->n_calls, 0);
    close(a->peer);
    a->peer = -1;
    pass(f, 3);
    assert_int_equal(a->n_calls, 0);
    watch(f, a, true);
    a->should_drain = true;
    pass(f, 1);
    assert_int_equal(a->n_calls, 1);
}

/* Activations: one call per item however often activated before it runs,
 * in the order activated, readable or not; one activated from its own
 * call runs on a later run, not inside the call. */
static void issue_14_poller_activate(void **state)
{
    struct fx *f = *state;
    struct item *a = &f->items[0], *b = &f->items[1], *c = &f->items[2];
    wr_poller_activate(&f->p, &c->it);
    wr_poller_activate(&f->p, &a->it);
    wr_poller_activate(&f->p, &c->it);
    wr_poller_activate(&f->p, &b->it);
    assert_int_equal(f->n_order, 0); /* never from inside activate */
    pass(f, 2);
    assert_int_equal(f->n_order, 3);
    assert_int_equal(f->order[0], 2);
    assert_int_equal(f->order[1], 0);
    assert_int_equal(f->order[2], 1);
    a->should_reactivate = true;
    wr_poller_activate(&f->p, &a->it);
    pass(f, 3);
    assert_int_equal(a->n_calls, 3);
    assert_int_equal(b->n_calls, 1);
    assert_int_equal(c->n_calls, 1);
}

/* Activated and readable in the same pass: one call (libevent merges an
 * active event's results the same way). */
static void issue_14_poller_activate_merges_with_readiness(void **state)
{
    struct fx *f = *state;
    struct item *a = &f->items[0];
    watch(f, a, true);
    a->should_drain = true;
    poke(a);
    wr_poller_activate(&f->p, &a->it);
    pass(f, 3);
    assert_int_equal(a->n_calls, 1);
}

/* Two readable sockets in one batch: whichever runs first forgets the
 * other, which is then never called (its report was already collected). */
static void issue_14_poller_forget_in_batch(void **state)
{
    struct fx *f = *state;
    struct item *a = &f->items[0], *b = &f->items[1];
    watch(f, a, true);
    watch(f, b, true);
    a->forget = b;
    b->forget = a;
    a->should_drain = b->should_drain = true;
    poke(a);
    poke(b);
    pass(f, 3);
    assert_int_equal(a->n_calls + b->n_calls, 1);
    /* Activated ones too: c forgets the other while both wait in one run. */
    struct item *c = &f->items[2];
    struct item *live = a->n_calls ? a : b;
    c->forget = live;
    wr_poller_activate(&f->p, &c->it);
    wr_poller_activate(&f->p, &live->it);
    pass(f, 3);
    assert_int_equal(c->n_calls, 1);
    assert_int_equal(live->n_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(issue_14_poller_level_triggered, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_poller_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_poller_activate, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_poller_activate_merges_with_readiness, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(issue_14_poller_forget_in_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
