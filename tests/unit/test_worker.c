/*
 * Unit tests for worker's control queue (issue 13.18): commands posted while
 * the worker does not read (far more than a pipe could hold) are never lost
 * (STOP, DRAIN, RELOAD each still take effect), several pending commands
 * are applied in their documented order (STOP wins; RELOAD before DRAIN; a
 * RELOAD while draining updates the snapshot but not the listeners), and
 * main posting to a running worker thread is race-free (run under TSan by
 * `make tsan`).
 *
 * The worker's loop runs on the test thread (event_base_loop with
 * EVLOOP_NONBLOCK) except in the threaded case: no sleeps, no timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weir/limits.h"
#include "weir/listener.h"
#include "weir/metrics.h"
#include "weir/worker.h"

/* More wake-ups than a pipe's 64 KiB holds one-byte commands. */
#define N_FLOOD 100000
#define MAX_ROUNDS 200000

struct fixture {
    char path[2][96];             /* unix listen addresses of cfg[0], cfg[1] */
    struct wr_config *cfg[2];     /* cfg[1] listens elsewhere */
    struct wr_listener_set set;   /* cfg[0]'s listeners */
    struct wr_worker_shared shared;
    struct wr_worker w;
};

static struct wr_config *load(const char *sock_path)
{
    char text[512];
    snprintf(text, sizeof(text),
             "[server]\nlisten = unix:%s\nworkers = 1\naccess_log = off\nerror_log = stderr\n"
             "[route r]\nmatch = prefix:/\nreturn = 200 ok\n",
             sock_path);
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "test.ini", &errs);
    wr_config_errors_fini(&errs);
    assert_non_null(cfg);
    return cfg;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    for (int i = 0; i < 2; i++) {
        snprintf(f->path[i], sizeof(f->path[i]), "/tmp/weir_test_worker_%d_%d.sock",
                 (int)getpid(), i);
        unlink(f->path[i]);
        f->cfg[i] = load(f->path[i]);
    }
    assert_int_equal(wr_listener_set_open(&f->set, f->cfg[0], 1, NULL), 0);
    f->shared.metrics = wr_metrics_new(1);
    f->shared.limits = wr_limits_new();
    assert_non_null(f->shared.metrics);
    assert_non_null(f->shared.limits);
    atomic_init(&f->shared.n_conns, 0);
    atomic_init(&f->shared.max_connections, 100);
    const struct wr_access_log_fds no_logs = {.server = -1};
    assert_int_equal(wr_worker_init(&f->w, 0, f->cfg[0], &f->set, &no_logs, &f->shared), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    wr_worker_fini(&f->w);
    wr_listener_set_close(&f->set);
    free(f->set.items);
    wr_limits_free(f->shared.limits);
    wr_metrics_free(f->shared.metrics);
    for (int i = 0; i < 2; i++) {
        wr_config_unref(f->cfg[i]);
        unlink(f->path[i]);
    }
    free(f);
    return 0;
}

/* Runs the worker's loop on this thread until it breaks (STOP, or a drain
 * with nothing left) or nothing is left to do. True when it broke. */
static bool run_until_break(struct wr_worker *w)
{
    for (int i = 0; i < MAX_ROUNDS; i++) {
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        if (event_base_got_break(w->base))
            return true;
    }
    return false;
}

/* A worker that reads nothing while main posts N_FLOOD reloads. */
static void flood(struct wr_worker *w, enum wr_worker_cmd cmd)
{
    for (int i = 0; i < N_FLOOD; i++)
        wr_worker_send(w, cmd);
}

static void issue_13_stop_survives_a_flood(void **state)
{
    struct fixture *f = *state;
    flood(&f->w, WR_WORKER_RELOAD);
    wr_worker_send(&f->w, WR_WORKER_STOP);
    assert_true(run_until_break(&f->w));
}

static void issue_13_drain_survives_a_flood(void **state)
{
    struct fixture *f = *state;
    flood(&f->w, WR_WORKER_RELOAD);
    wr_worker_send(&f->w, WR_WORKER_DRAIN);
    assert_true(run_until_break(&f->w));
    assert_true(f->w.conns.is_draining);
    assert_true(f->w.is_accept_paused); /* it stopped accepting */
}

static void issue_13_reload_survives_a_flood(void **state)
{
    struct fixture *f = *state;
    flood(&f->w, WR_WORKER_DRAIN);
    wr_worker_publish(&f->w, f->cfg[1]);
    run_until_break(&f->w);
    for (int i = 0; i < 100; i++) /* and whatever is left to read */
        event_base_loop(f->w.base, EVLOOP_NONBLOCK);
    assert_ptr_equal(f->w.conns.cfg, f->cfg[1]);
}

/* RELOAD and DRAIN pending together: the worker moves to the new listeners,
 * then the drain stops accepting on them too. */
static void issue_13_reload_then_drain(void **state)
{
    struct fixture *f = *state;
    struct wr_listener_set next;
    assert_int_equal(wr_listener_set_update(&next, &f->set, f->cfg[1]), 0);
    wr_worker_publish_listeners(&f->w, &next);
    wr_worker_send(&f->w, WR_WORKER_DRAIN);
    wr_worker_publish(&f->w, f->cfg[1]);
    assert_true(run_until_break(&f->w));
    assert_true(wr_worker_is_switched(&f->w));
    assert_ptr_equal(f->w.listeners, &next);
    assert_ptr_equal(f->w.conns.cfg, f->cfg[1]);
    assert_true(f->w.is_accept_paused);
    wr_worker_fini(&f->w); /* stops polling next before it goes */
    wr_listener_set_retire(&f->set);
    f->set = (struct wr_listener_set){0};
    wr_listener_set_close(&next);
    free(next.items);
}

/* A RELOAD taken while draining updates the snapshot, never the listeners. */
static void issue_13_reload_while_draining(void **state)
{
    struct fixture *f = *state;
    wr_worker_send(&f->w, WR_WORKER_DRAIN);
    assert_true(run_until_break(&f->w));
    struct wr_listener_set next;
    assert_int_equal(wr_listener_set_update(&next, &f->set, f->cfg[1]), 0);
    wr_worker_publish_listeners(&f->w, &next);
    wr_worker_publish(&f->w, f->cfg[1]);
    run_until_break(&f->w);
    assert_true(wr_worker_is_switched(&f->w));
    assert_ptr_equal(f->w.listeners, &f->set);
    assert_ptr_equal(f->w.conns.cfg, f->cfg[1]);
    wr_worker_fini(&f->w);
    wr_listener_set_retire(&f->set);
    f->set = (struct wr_listener_set){0};
    wr_listener_set_close(&next);
    free(next.items);
}

/* STOP wins over a DRAIN pending with it: the loop ends at once, without
 * starting a drain (which would stop accepting first). */
static void issue_13_stop_wins_over_drain(void **state)
{
    struct fixture *f = *state;
    wr_worker_send(&f->w, WR_WORKER_DRAIN);
    wr_worker_send(&f->w, WR_WORKER_STOP);
    assert_true(run_until_break(&f->w));
    assert_false(f->w.conns.is_draining);
    assert_false(f->w.is_accept_paused);
}

/* Main publishing snapshots to a running worker as fast as it can, then
 * draining it: the drain is seen, and TSan sees no race. */
static void issue_13_flood_a_running_worker(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(wr_worker_start(&f->w), 0);
    for (int i = 0; i < 20000; i++)
        wr_worker_publish(&f->w, f->cfg[i % 2]);
    wr_worker_send(&f->w, WR_WORKER_DRAIN);
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 10000 && !wr_worker_is_done(&f->w); i++)
        nanosleep(&ms, NULL);
    assert_true(wr_worker_is_done(&f->w));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(issue_13_stop_survives_a_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_drain_survives_a_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_reload_survives_a_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_reload_then_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_reload_while_draining, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_stop_wins_over_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_flood_a_running_worker, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
