/*
 * main: command line, start-up order, signals and shutdown.
 *
 * Start-up: load and check the config -> open logs -> bind listeners and
 * the admin endpoint (or take them from socket activation) -> drop
 * privileges -> start workers -> tell systemd READY=1 -> wait for signals,
 * serve the admin endpoint, and send STATUS= every few seconds.
 * Shutdown (SIGTERM/SIGINT): DRAIN every worker, wait for them up to
 * shutdown_timeout, then STOP the rest. Main does no request work.
 * Reload (SIGHUP) binds what the new file adds (listeners, admin), then
 * publishes the new snapshot and listener set to the workers; sockets the
 * file dropped close once every worker let go of them. Changes that need a
 * restart (workers, logs, user) are refused with the reason logged.
 * TLS contexts are built with each snapshot, before privileges drop at
 * start (root-only keys), and ticket keys rotate on a timer here.
 * Upstream names with `resolve` are looked up again on this loop
 * (resolve.h); a changed address set publishes a snapshot derived from
 * the running one, as a reload publishes. OCSP responses for stapling are
 * fetched and refreshed on this loop too (stapler.h).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <pcre2.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "weir/admin.h"
#include "weir/cache.h"
#include "weir/cache_disk.h"
#include "weir/cache_store.h"
#include "weir/clock.h"
#include "weir/config.h"
#include "weir/explain.h"
#include "weir/limits.h"
#include "weir/lint.h"
#include "weir/listener.h"
#include "weir/log.h"
#include "weir/privileges.h"
#include "weir/resolve.h"
#include "weir/stapler.h"
#include "weir/upstream.h"
#include "weir/metrics.h"
#include "weir/tls.h"
#include "weir/worker.h"

#define DONE_POLL_MS 50
#define RETIRE_POLL_MS 20
#define SWITCH_WAIT_MS 2000     /* a reload waits this long for the previous one's switch */
#define STATUS_TICK_MS 1000     /* rate samples */
#define STATUS_EVERY_TICKS 5    /* sd_notify STATUS= every 5 s */
#define RATE_WINDOW_MS 10000
#define MAX_REPLACED 16         /* replaced snapshots whose vanished addresses are marked */
#define CACHE_HFM_MS 10000      /* a cache's hit-for-miss mark lasts this long */

struct app {
    struct wr_config *cfg;
    struct event_base *base;
    struct wr_listener_set *listeners; /* owned: the current generation */
    struct wr_listener_set *retiring;  /* owned: the previous one, until every worker
                                          switched off it */
    struct wr_worker *workers;
    size_t n_workers;
    struct wr_worker_shared shared;
    struct wr_health_checker *checker; /* active health checks, on base */
    struct wr_resolver *resolver;      /* upstream names re-resolved, on base */
    struct wr_stapler *stapler;        /* OCSP responses fetched for stapling, on base */
    struct wr_config *replaced[MAX_REPLACED]; /* owned refs: snapshots DNS changes replaced
                                                 since the last load (see retire_replaced) */
    size_t n_replaced;
    struct wr_metrics *metrics;        /* owned; outlives the workers */
    struct wr_metrics_rate rate;
    struct wr_admin *admin;            /* owned; listens only when [admin] listen is set */
    struct wr_listener_inherited inherited; /* socket activation, start-up only */
    struct event *signals[4];
    struct event *done_poll, *deadline, *retire_poll, *status_tick;
    unsigned n_status_ticks;
    struct wr_tls_keys *tls_keys;   /* owned: shared by every snapshot's contexts */
    struct event *ticket_rotation;  /* owned */
    bool is_stopping;
};

/* Where the configuration is without -c: what the man page and the unit say. */
#define DEFAULT_CONFIG "/etc/weir/weir.ini"

/* Says what conf/weir.8 OPTIONS says (test_cli.py compares them). */
static void usage(FILE *out)
{
    fprintf(out, "usage: weir [-t [--strict]] [-c FILE]\n"
                 "       weir route [-c FILE] [OPTIONS] METHOD URL   (weir route -h)\n"
                 "       weir -V | -h\n"
                 "  -c, --config FILE  the configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -t, --test         check the configuration and exit: 0 ok, 1 errors\n"
                 "      --strict       with -t: warnings fail the check too (exit 1)\n"
                 "  -V, --version      print the version and library versions\n"
                 "  -h, --help         print this help\n"
                 "Without -t, weir runs in the foreground (systemd supervises it).\n");
}

static void print_version(void)
{
    char pcre2_version[32] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre2_version);
    printf("weir %s\n", WEIR_VERSION);
    printf("built with libevent %s, PCRE2 %s, inih, libsystemd\n", event_get_version(),
           pcre2_version);
    printf("running with %s\n", wr_tls_library_version());
}

/* Config errors go to stderr at start-up (and for -t), to the error log on
 * reload, where stderr may be nowhere. */
static void report(bool to_log, const char *line)
{
    if (to_log)
        wr_log(WR_LOG_ERROR, -1, 0, "%s", line);
    else
        fprintf(stderr, "%s\n", line);
}

/* Every error and warning in errs, then frees them. Warnings also go to the
 * error log, at warn, when it is where an operator looks (reload). */
static size_t n_warnings_reported; /* for weir -t --strict */

static void report_all(bool to_log, struct wr_config_errors *errs)
{
    n_warnings_reported += errs->n_warnings;
    for (size_t i = 0; i < errs->n_lines; i++)
        report(to_log, errs->lines[i]);
    for (size_t i = 0; i < errs->n_warnings; i++) {
        if (to_log)
            wr_log(WR_LOG_WARN, -1, 0, "%s", errs->warnings[i]);
        else
            fprintf(stderr, "%s\n", errs->warnings[i]);
    }
    wr_config_errors_fini(errs);
}

/*
 * Certificates and keys are read here, so at start before privileges
 * drop. On reload, a section whose files fail keeps the running one's
 * context (tls.c says why in the log); a new section that fails refuses
 * the reload. Upstream client contexts (tls_ca read here too) are built
 * in the same set; one that fails refuses the load or the reload.
 */
static bool has_upstream_tls(const struct wr_config *cfg)
{
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        if (cfg->upstreams[i].tls)
            return true;
    }
    return false;
}

static int attach_tls(struct app *app, struct wr_config *cfg, bool to_log)
{
    if (!cfg->has_default_tls && !has_upstream_tls(cfg))
        return 0;
    struct wr_config_errors errs = {0};
    const struct wr_tls_set *old = app->cfg ? app->cfg->tls_set : NULL;
    struct wr_tls_set *set = wr_tls_set_new(cfg, app->tls_keys, old, &errs);
    report_all(to_log, &errs);
    if (!set)
        return -1;
    wr_tls_set_attach(cfg, set);
    return 0;
}

/*
 * What the file cannot say about itself: certificates (dates, names) at
 * every load; at start (and weir -t) also the user and the files it will
 * need (privileges.h), before anything is bound, so that `weir -t` passing
 * means the start gets past them too. Returns -1 on any error.
 */
static int check_environment(const struct wr_config *cfg, bool to_log, bool is_start)
{
    struct wr_config_errors errs = {0};
    wr_tls_check_certs(cfg, &errs);
    if (is_start)
        wr_privileges_check(cfg, &errs);
    bool is_bad = errs.n_lines > 0;
    report_all(to_log, &errs);
    return is_bad ? -1 : 0;
}

/* Reads path: at start (and -t) is_start, reporting to stderr; on reload to
 * the log. Returns the snapshot with its TLS contexts, or NULL. */
static struct wr_config *load_config(struct app *app, const char *path, bool is_start)
{
    bool to_log = !is_start;
    struct wr_config_errors errs = {0};
    /* With [server] resolver, names are asked of those nameservers at load
     * too: a name only they know must not fail `weir -t` or a start. */
    const struct wr_config_options opts = {.resolve = wr_config_resolve_getaddrinfo,
                                           .resolve_ns = wr_resolve_blocking,
                                           .allow_include = true};
    struct wr_config *cfg = wr_config_load_opts(path, &opts, &errs);
    if (cfg && wr_lint_config(cfg, &errs) < 0)
        wr_config_errors_add(&errs, true, "%s: warning: out of memory checking routes", path);
    report_all(to_log, &errs);
    if (cfg && (attach_tls(app, cfg, to_log) < 0 ||
                check_environment(cfg, to_log, is_start) < 0)) {
        wr_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

/* ---- the HTTP cache's stores (issue 20) ------------------------------------ */

/* old's store for section c when old has a [cache] of that name made with
 * the same sizes, else NULL. */
static const struct wr_cache_cfg *reusable_store(const struct wr_config *old,
                                                 const struct wr_cache_cfg *c)
{
    for (size_t i = 0; old && i < old->n_caches; i++) {
        const struct wr_cache_cfg *o = &old->caches[i];
        uint64_t max_size, max_object_size, inactive_ms;
        if (!o->store || strcmp(o->name, c->name) != 0)
            continue;
        wr_cache_store_limits(o->store, &max_size, &max_object_size, &inactive_ms);
        bool is_same_disk = (!o->path && !c->path) ||
                            (o->path && c->path && strcmp(o->path, c->path) == 0 &&
                             o->max_disk_size == c->max_disk_size);
        if (max_size == c->max_size && max_object_size == c->max_object_size &&
            inactive_ms == c->inactive_ms && is_same_disk)
            return o;
    }
    return NULL;
}

static void close_disk(void *disk)
{
    wr_cache_disk_close(disk);
}

/* A new store for c, with its disk tier when c has a path (closed when
 * the store goes). Returns -1 with the reason logged. */
static int make_store(struct wr_cache_cfg *c)
{
    c->store = wr_cache_store_new(c->max_size, c->max_object_size, CACHE_HFM_MS, c->inactive_ms);
    if (!c->store) {
        wr_log(WR_LOG_ERROR, -1, 0, "cache %s: out of memory making its store", c->name);
        return -1;
    }
    if (!c->path)
        return 0;
    char err[256];
    struct wr_cache_disk_opts opts = {.max_bytes = c->max_disk_size,
                                      .meta_version = WR_CACHE_META_VERSION,
                                      .inactive_ms = c->inactive_ms};
    c->disk = wr_cache_disk_open(c->path, &opts, err, sizeof(err));
    if (!c->disk) {
        wr_log(WR_LOG_ERROR, -1, 0, "cache %s: path %s: %s", c->name, c->path, err);
        return -1; /* the store goes with cfg */
    }
    wr_cache_store_on_free(c->store, close_disk, c->disk);
    return 0;
}

/*
 * Gives each [cache NAME] of cfg its store, before cfg is published (start
 * and reload; never weir -t, which must not allocate caches): the store of
 * old (the running snapshot, NULL at start) when the section kept its name
 * and sizes, so a reload keeps what is cached; else a new one. cfg holds a
 * reference on each, released with it (release_cache). Returns -1 when out
 * of memory (the stores given so far go with cfg).
 */
static int attach_caches(struct wr_config *cfg, const struct wr_config *old)
{
    cfg->release_cache = wr_cache_store_unref;
    for (size_t i = 0; i < cfg->n_caches; i++) {
        struct wr_cache_cfg *c = &cfg->caches[i];
        const struct wr_cache_cfg *kept = reusable_store(old, c);
        if (kept) {
            wr_cache_store_ref(kept->store);
            c->store = kept->store;
            c->disk = kept->disk;
        } else if (make_store(c) < 0) {
            return -1;
        }
    }
    /* Said once every section has its store (a failed reload says nothing). */
    for (size_t i = 0; i < cfg->n_caches; i++) {
        const struct wr_cache_cfg *c = &cfg->caches[i];
        bool is_kept = reusable_store(old, c) != NULL;
        wr_log(WR_LOG_INFO, -1, 0, "cache %s: store %s%s", c->name, is_kept ? "kept" : "new",
               c->disk ? " (with its disk tier)" : "");
    }
    return 0;
}

/* Entries not hit for their section's `inactive` go (once a second). */
static void sweep_caches(const struct wr_config *cfg)
{
    uint64_t now_ms = wr_clock_now_ms();
    for (size_t i = 0; i < cfg->n_caches; i++) {
        if (cfg->caches[i].store)
            wr_cache_store_sweep(cfg->caches[i].store, now_ms);
    }
}

static void stop_workers_now(struct app *app)
{
    wr_log(WR_LOG_WARN, -1, 0, "shutdown_timeout reached: closing remaining connections");
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_send(&app->workers[i], WR_WORKER_STOP);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_workers_now(arg);
}

static void on_done_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *app = arg;
    for (size_t i = 0; i < app->n_workers; i++) {
        if (!wr_worker_is_done(&app->workers[i]))
            return;
    }
    event_base_loopbreak(app->base);
}

static void begin_shutdown(struct app *app)
{
    if (app->is_stopping)
        return;
    app->is_stopping = true;
    sd_notify(0, "STOPPING=1");
    wr_log(WR_LOG_INFO, -1, 0, "shutting down: draining connections");
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_send(&app->workers[i], WR_WORKER_DRAIN);
    uint64_t ms = app->cfg->limits.shutdown_timeout_ms;
    struct timeval limit = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    struct timeval poll = {0, DONE_POLL_MS * 1000};
    app->deadline = evtimer_new(app->base, on_deadline, app);
    app->done_poll = event_new(app->base, -1, EV_PERSIST, on_done_poll, app);
    if (app->deadline)
        evtimer_add(app->deadline, &limit);
    if (app->done_poll)
        event_add(app->done_poll, &poll);
    if (!app->deadline || !app->done_poll) {
        stop_workers_now(app);
        event_base_loopbreak(app->base);
    }
}

static bool is_same_list(char *const *a, size_t n, char *const *b, size_t m)
{
    for (size_t i = 0; i < n && n == m; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return false;
    }
    return n == m;
}

/* What a reload cannot change yet without a restart, or NULL. */
static const char *reload_blocker(const struct wr_config *old, const struct wr_config *cfg)
{
    const struct wr_server_cfg *a = &old->server, *b = &cfg->server;
    if (a->n_workers != b->n_workers)
        return "[server] workers";
    if (strcmp(a->error_log, b->error_log) != 0)
        return "[server] error_log";
    if ((a->access_log == NULL) != (b->access_log == NULL) ||
        (a->access_log && strcmp(a->access_log, b->access_log) != 0))
        return "[server] access_log";
    if (!is_same_list(old->route_access_logs, old->n_route_access_logs, cfg->route_access_logs,
                      cfg->n_route_access_logs))
        return "the set of routes' access_log files";
    if ((a->user == NULL) != (b->user == NULL) || (a->user && strcmp(a->user, b->user) != 0))
        return "[server] user";
    return NULL;
}

static bool all_switched(struct app *app)
{
    for (size_t i = 0; i < app->n_workers; i++) {
        if (!wr_worker_is_switched(&app->workers[i]))
            return false;
    }
    return true;
}

/* Closes the previous generation's dropped sockets once no worker polls
 * them. Returns true when nothing is left to retire. */
static bool retire_previous(struct app *app)
{
    if (!app->retiring)
        return true;
    if (app->is_stopping || !all_switched(app))
        return false; /* a draining worker writes its row: app_fini retires then */
    wr_listener_set_retire(app->retiring);
    free(app->retiring);
    app->retiring = NULL;
    event_del(app->retire_poll);
    return true;
}

static void on_retire_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    retire_previous(arg);
}

/* A reload right after another waits (bounded) for the previous switch:
 * one generation in flight keeps every socket's owner obvious. */
static int wait_for_switch(struct app *app)
{
    for (int ms = 0; ms < SWITCH_WAIT_MS; ms++) {
        if (retire_previous(app))
            return 0;
        struct timespec one_ms = {0, 1000000};
        nanosleep(&one_ms, NULL);
    }
    wr_log(WR_LOG_ERROR, -1, 0, "reload: workers still hold the previous listeners");
    return -1;
}

static bool has_listen(const struct wr_listener_set *set, const char *text)
{
    for (size_t i = 0; i < set->n_listens; i++) {
        if (strcmp(set->items[i].addr.text, text) == 0)
            return true;
    }
    return false;
}

static void log_listener_changes(const struct wr_listener_set *old,
                                 const struct wr_listener_set *next)
{
    for (size_t i = 0; i < next->n_listens; i++) {
        if (!has_listen(old, next->items[i].addr.text))
            wr_log(WR_LOG_INFO, -1, 0, "reload: listening on %s", next->items[i].addr.text);
    }
    for (size_t i = 0; i < old->n_listens; i++) {
        if (!has_listen(next, old->items[i].addr.text))
            wr_log(WR_LOG_INFO, -1, 0, "reload: no longer listening on %s",
                   old->items[i].addr.text);
    }
}

/* Where cfg wants the admin endpoint, or NULL. */
static const struct wr_listen_addr *admin_target(const struct wr_config *cfg)
{
    return cfg->admin.is_enabled ? &cfg->admin.listen : NULL;
}

static bool is_admin_changed(const struct app *app, const struct wr_config *cfg)
{
    const struct wr_listen_addr *want = admin_target(cfg), *have = wr_admin_address(app->admin);
    if (!want || !have)
        return want != have;
    return strcmp(want->text, have->text) != 0;
}

static int open_admin(const struct wr_listen_addr *addr)
{
    int fd = wr_listener_open_addr(addr);
    if (fd < 0)
        wr_log(WR_LOG_ERROR, -1, 0, "[admin] listen %s: %s", addr->text, strerror(errno));
    return fd;
}

/*
 * Binds what cfg adds, before anything changes: the admin socket into
 * *admin_fd (when it moves) and the next listener set into *next (NULL when
 * the listen lines are the same). Returns 0, or -1 with nothing bound.
 */
static int bind_additions(struct app *app, const struct wr_config *cfg,
                          struct wr_listener_set **next, int *admin_fd)
{
    *next = NULL;
    *admin_fd = -1;
    if (wait_for_switch(app) < 0)
        return -1;
    if (is_admin_changed(app, cfg) && admin_target(cfg) &&
        (*admin_fd = open_admin(admin_target(cfg))) < 0)
        return -1;
    if (wr_listener_set_matches(app->listeners, cfg))
        return 0;
    *next = malloc(sizeof(**next));
    if (!*next || wr_listener_set_update(*next, app->listeners, cfg) < 0) {
        free(*next);
        *next = NULL;
        if (*admin_fd >= 0)
            close(*admin_fd); /* a unix admin path is left for the next bind to clear */
        *admin_fd = -1;
        return -1;
    }
    return 0;
}

/* Hands the workers their new listeners; the old generation retires
 * when every worker switched (on_retire_poll). */
static void switch_listeners(struct app *app, struct wr_listener_set *next)
{
    log_listener_changes(app->listeners, next);
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_publish_listeners(&app->workers[i], next);
    app->retiring = app->listeners;
    app->listeners = next;
    struct timeval poll = {0, RETIRE_POLL_MS * 1000};
    event_add(app->retire_poll, &poll);
}

static void reload_failed(struct app *app, struct wr_config *cfg)
{
    app->metrics->reload_failures++;
    wr_log(WR_LOG_ERROR, -1, 0, "reload failed; still serving the previous configuration");
    wr_config_unref(cfg);
    sd_notify(0, "READY=1");
}

/* Drops the snapshots DNS changes replaced (retire_replaced). */
static void forget_replaced(struct app *app)
{
    for (size_t i = 0; i < app->n_replaced; i++)
        wr_config_unref(app->replaced[i]);
    app->n_replaced = 0;
}

/* ---- OCSP stapling (stapler.h) ------------------------------------------ */

/* Before cfg is published: the responses fetched for certificates it
 * still has are stapled in its contexts from its first handshake on. */
static void restaple(struct app *app, struct wr_config *cfg)
{
    if (app->stapler)
        wr_stapler_set_config(app->stapler, cfg);
}

static void start_stapler(struct app *app)
{
    app->stapler = wr_stapler_new(app->base, app->metrics);
    if (!app->stapler)
        wr_log(WR_LOG_ERROR, -1, 0, "OCSP: out of memory; no response is fetched for stapling");
    restaple(app, app->cfg);
}

/*
 * SIGHUP: parse the file again; on any error (or a socket that cannot be
 * bound) keep serving on the running snapshot and sockets. Otherwise
 * publish the new snapshot (and listeners) to every worker: connections
 * they accept from then on use it, open ones finish on theirs.
 */
static void reload(struct app *app)
{
    sd_notify(0, "RELOADING=1");
    struct wr_config *cfg = load_config(app, app->cfg->path, false);
    const char *blocker = cfg ? reload_blocker(app->cfg, cfg) : NULL;
    if (blocker)
        wr_log(WR_LOG_ERROR, -1, 0, "reload: changing %s needs a restart", blocker);
    struct wr_listener_set *next = NULL;
    int admin_fd = -1;
    if (!cfg || blocker || attach_caches(cfg, app->cfg) < 0 ||
        bind_additions(app, cfg, &next, &admin_fd) < 0) {
        reload_failed(app, cfg);
        return;
    }
    if (wr_metrics_register(app->metrics, cfg) < 0)
        wr_log(WR_LOG_WARN, -1, 0, "reload: out of memory naming metrics; some go unlabelled");
    if (is_admin_changed(app, cfg)) {
        const struct wr_listen_addr *to = admin_target(cfg);
        wr_log(WR_LOG_INFO, -1, 0, "reload: admin endpoint %s%s", to ? "on " : "off",
               to ? to->text : "");
        if (wr_admin_listen_take(app->admin, admin_fd, to, false) < 0)
            wr_log(WR_LOG_ERROR, -1, 0, "reload: admin endpoint: cannot watch its socket");
    }
    if (next)
        switch_listeners(app, next);
    atomic_store_explicit(&app->shared.max_connections, cfg->server.max_connections,
                          memory_order_relaxed);
    wr_log_set_level(cfg->server.log_level);
    /* Before publishing: a reload neither resurrects a failed server nor
     * forgets a verdict. */
    wr_upstream_carry_health(app->cfg, cfg);
    restaple(app, cfg);
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_publish(&app->workers[i], cfg);
    wr_config_unref(app->cfg);
    app->cfg = cfg;
    wr_admin_set_config(app->admin, &cfg->admin);
    wr_admin_set_caches(app->admin, cfg->caches, cfg->n_caches);
    if (app->checker)
        wr_health_checker_set_config(app->checker, cfg);
    forget_replaced(app); /* a reload marks nothing in the snapshots it replaces */
    if (app->resolver && wr_resolver_set_config(app->resolver, cfg) < 0)
        wr_log(WR_LOG_ERROR, -1, 0, "reload: out of memory; upstream names are not re-resolved");
    app->metrics->reloads++;
    wr_log(WR_LOG_INFO, -1, 0, "configuration reloaded from %s", cfg->path);
    sd_notify(0, "READY=1");
}

/* ---- upstream names re-resolved (resolve.h) ------------------------------ */

/*
 * old was replaced by new_cfg: in old and every snapshot replaced before it
 * since the last load (keep-alive client connections may still use any of
 * them), the addresses new_cfg no longer has are marked down, so no new
 * request of theirs picks them. Snapshots only this list still holds are
 * dropped; past MAX_REPLACED the oldest is (its connections then miss
 * later removals).
 */
static void retire_replaced(struct app *app, struct wr_config *old,
                            const struct wr_config *new_cfg)
{
    if (app->n_replaced == MAX_REPLACED) {
        wr_config_unref(app->replaced[0]);
        memmove(app->replaced, app->replaced + 1, (MAX_REPLACED - 1) * sizeof(app->replaced[0]));
        app->n_replaced--;
    }
    app->replaced[app->n_replaced++] = wr_config_ref(old);
    size_t n_kept = 0;
    for (size_t i = 0; i < app->n_replaced; i++) {
        struct wr_config *k = app->replaced[i];
        wr_upstream_retire_vanished(k, new_cfg);
        /* 1: no connection holds it, and none can take it again */
        if (atomic_load_explicit(&k->refs, memory_order_acquire) == 1)
            wr_config_unref(k);
        else
            app->replaced[n_kept++] = k;
    }
    app->n_replaced = n_kept;
}

/*
 * A name's address set changed: publish a snapshot derived from the running
 * one (its new servers only; nothing re-read from files) the way a reload
 * publishes, so requests in flight finish on the servers they have and
 * health moves by address.
 */
static void on_names_changed(void *arg)
{
    struct app *app = arg;
    if (app->is_stopping)
        return;
    struct wr_config *cfg = wr_resolver_derive(app->resolver, app->cfg);
    if (!cfg) {
        wr_log(WR_LOG_ERROR, -1, 0, "resolve: out of memory; still serving the previous addresses");
        return;
    }
    if (wr_metrics_register(app->metrics, cfg) < 0)
        wr_log(WR_LOG_WARN, -1, 0, "resolve: out of memory naming metrics; some go unlabelled");
    wr_upstream_carry_health(app->cfg, cfg);
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_publish(&app->workers[i], cfg);
    retire_replaced(app, app->cfg, cfg);
    wr_config_unref(app->cfg);
    app->cfg = cfg;
    wr_admin_set_config(app->admin, &cfg->admin); /* it points into the snapshot */
    wr_admin_set_caches(app->admin, cfg->caches, cfg->n_caches);
    if (app->checker)
        wr_health_checker_set_config(app->checker, cfg);
}

static void start_resolver(struct app *app)
{
    app->resolver = wr_resolver_new(app->base, app->metrics, on_names_changed, app);
    if (!app->resolver || wr_resolver_set_config(app->resolver, app->cfg) < 0)
        wr_log(WR_LOG_ERROR, -1, 0, "resolve: cannot start a DNS client; upstream names are "
                                    "resolved at load and reload only");
}

static void on_ticket_rotation(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *app = arg;
    if (wr_tls_keys_rotate(app->tls_keys) < 0)
        wr_log(WR_LOG_ERROR, -1, 0, "TLS ticket keys: no randomness; kept the current key");
    else
        wr_log(WR_LOG_DEBUG, -1, 0, "TLS ticket keys rotated");
}

/* Tickets must not be decryptable forever: a stolen key would unlock every
 * session it ever sealed (forward secrecy of resumed sessions). */
static int start_ticket_rotation(struct app *app)
{
    uint64_t ms = WR_TLS_TICKET_ROTATE_MS;
    struct timeval every = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    app->ticket_rotation = event_new(app->base, -1, EV_PERSIST, on_ticket_rotation, app);
    return app->ticket_rotation && event_add(app->ticket_rotation, &every) == 0 ? 0 : -1;
}

/* ---- sd_notify STATUS= and the request rate ----------------------------- */

static void notify_status(struct app *app, const struct wr_metrics_totals *t)
{
    double rps = wr_metrics_rate_per_sec(&app->rate, RATE_WINDOW_MS);
    sd_notifyf(0, "STATUS=%s: %llu connections, %.0f req/s",
               app->is_stopping ? "draining" : "serving", (unsigned long long)t->conns_open,
               rps);
}

/* weir_upstream_server_up follows the servers' shared health (passive and
 * active), sampled once a second. */
static void publish_server_health(struct app *app)
{
    uint64_t now = wr_clock_now_ms();
    for (size_t u = 0; u < app->cfg->n_upstreams; u++) {
        const struct wr_upstream_cfg *up = &app->cfg->upstreams[u];
        for (size_t i = 0; i < up->n_servers; i++) {
            if (up->servers[i].metrics_id != 0)
                wr_metrics_set_server_down(app->metrics, up->servers[i].metrics_id,
                                           !wr_upstream_is_up(up, (int)i, now));
        }
    }
}

static void on_status_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *app = arg;
    publish_server_health(app);
    sweep_caches(app->cfg);
    struct wr_metrics_totals t;
    wr_metrics_sum(app->metrics, &t);
    wr_metrics_rate_add(&app->rate, wr_clock_now_ms(), t.requests);
    if (++app->n_status_ticks % STATUS_EVERY_TICKS == 0)
        notify_status(app, &t);
}

/* ---- socket activation -------------------------------------------------- */

/* Sockets systemd passed (LISTEN_FDS), to be claimed by listen entries. */
static int collect_inherited(struct app *app)
{
    int n = sd_listen_fds(1);
    if (n < 0) {
        wr_log(WR_LOG_ERROR, -1, 0, "socket activation: %s", strerror(-n));
        return -1;
    }
    if (n == 0)
        return 0;
    app->inherited.fds = calloc((size_t)n, sizeof(int));
    if (!app->inherited.fds)
        return -1;
    app->inherited.n_fds = (size_t)n;
    int rc = 0;
    for (int k = 0; k < n; k++) {
        int fd = SD_LISTEN_FDS_START + k;
        app->inherited.fds[k] = fd;
        /* As for our own listeners (listener.c): connections inherit
         * TCP_NODELAY, and are accepted once their first bytes came.
         * Fails harmlessly on a unix socket. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            wr_log(WR_LOG_ERROR, -1, 0, "socket activation: fd %d is not a listening stream "
                                        "socket (weir.socket needs ListenStream=)", fd);
            rc = -1;
        }
    }
    wr_log(WR_LOG_INFO, -1, 0, "socket activation: %d inherited sockets", n);
    return rc;
}

/* Every inherited socket must have found its listen entry. */
static int check_inherited_claimed(struct app *app)
{
    int rc = 0;
    for (size_t k = 0; k < app->inherited.n_fds; k++) {
        int fd = app->inherited.fds[k];
        if (fd < 0)
            continue;
        char where[160];
        wr_listener_describe_fd(fd, where, sizeof(where));
        wr_log(WR_LOG_ERROR, -1, 0, "socket activation: inherited socket %s matches no "
                                    "[server] listen or [admin] listen", where);
        close(fd);
        app->inherited.fds[k] = -1;
        rc = -1;
    }
    free(app->inherited.fds);
    app->inherited = (struct wr_listener_inherited){0};
    return rc;
}

/* The admin endpoint object, listening when [admin] listen is set. */
static int start_admin(struct app *app)
{
    app->admin = wr_admin_new(app->base, app->metrics, &app->rate);
    if (!app->admin)
        return -1;
    wr_admin_set_config(app->admin, &app->cfg->admin);
    wr_admin_set_caches(app->admin, app->cfg->caches, app->cfg->n_caches);
    const struct wr_listen_addr *addr = admin_target(app->cfg);
    if (!addr)
        return 0;
    int fd = wr_listener_claim_inherited(&app->inherited, addr);
    bool is_inherited = fd >= 0;
    if (fd < 0 && (fd = open_admin(addr)) < 0)
        return -1;
    if (wr_admin_listen_take(app->admin, fd, addr, is_inherited) < 0)
        return -1;
    wr_log(WR_LOG_INFO, -1, 0, "admin endpoint on %s", addr->text);
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct app *app = arg;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        begin_shutdown(app);
        break;
    case SIGUSR1:
        if (wr_log_reopen() == 0)
            wr_log(WR_LOG_INFO, -1, 0, "log files reopened");
        break;
    case SIGHUP:
        if (!app->is_stopping)
            reload(app);
        break;
    }
}

/* Workers inherit a mask that blocks the signals main handles, so those
 * are always delivered to main's thread. */
static int start_workers(struct app *app, const struct wr_access_log_fds *logs)
{
    app->shared.limits = wr_limits_new();
    if (!app->shared.limits) {
        wr_log(WR_LOG_ERROR, -1, 0, "out of memory for the per-address limit tables");
        return -1;
    }
    app->n_workers = app->cfg->server.n_workers;
    app->workers = calloc(app->n_workers, sizeof(*app->workers));
    if (!app->workers)
        return -1;
    atomic_init(&app->shared.max_connections, app->cfg->server.max_connections);
    atomic_init(&app->shared.n_conns, 0);
    app->shared.metrics = app->metrics;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = 0;
    for (size_t i = 0; i < app->n_workers && rc == 0; i++) {
        struct wr_worker *w = &app->workers[i];
        rc = wr_worker_init(w, (int)i, app->cfg, app->listeners, logs, &app->shared);
        if (rc == 0 && wr_worker_start(w) < 0) {
            wr_log(WR_LOG_ERROR, -1, 0, "starting worker %zu: %s", i, strerror(errno));
            wr_worker_fini(w);
            rc = -1;
        }
        if (rc < 0)
            app->n_workers = i; /* only those before i exist */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int add_signals(struct app *app)
{
    const int sigs[4] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (int i = 0; i < 4; i++) {
        app->signals[i] = evsignal_new(app->base, sigs[i], on_signal, app);
        if (!app->signals[i] || event_add(app->signals[i], NULL) < 0)
            return -1;
    }
    return 0;
}

static void app_fini(struct app *app)
{
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_send(&app->workers[i], WR_WORKER_STOP);
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_fini(&app->workers[i]);
    free(app->workers);
    /* Workers are joined: whatever they did not close, main closes now. */
    if (app->retiring) {
        wr_listener_set_retire(app->retiring);
        free(app->retiring);
    }
    if (app->listeners) {
        wr_listener_set_close(app->listeners);
        free(app->listeners);
    }
    for (size_t k = 0; k < app->inherited.n_fds; k++) {
        if (app->inherited.fds[k] >= 0)
            close(app->inherited.fds[k]);
    }
    free(app->inherited.fds);
    wr_admin_free(app->admin);
    wr_health_checker_free(app->checker);
    wr_resolver_free(app->resolver);
    wr_stapler_free(app->stapler);
    forget_replaced(app);
    wr_limits_free(app->shared.limits); /* after the workers that used it */
    app->shared.limits = NULL;
    for (int i = 0; i < 4; i++) {
        if (app->signals[i])
            event_free(app->signals[i]);
    }
    struct event *timers[] = {app->deadline, app->done_poll, app->retire_poll, app->status_tick,
                              app->ticket_rotation};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        if (timers[i])
            event_free(timers[i]);
    }
    if (app->base)
        event_base_free(app->base);
    wr_metrics_free(app->metrics);
    wr_config_unref(app->cfg);
    wr_tls_keys_free(app->tls_keys); /* after the last snapshot and its contexts */
}

static int open_logs(const struct wr_config *cfg, struct wr_access_log_fds *logs)
{
    int error_fd = wr_log_open(cfg->server.error_log);
    if (error_fd < 0) {
        fprintf(stderr, "weir: error_log %s: %s\n", cfg->server.error_log,
                wr_log_strerror(errno));
        return -1;
    }
    wr_log_set_error(error_fd, cfg->server.log_level);
    *logs = (struct wr_access_log_fds){.server = -1};
    if (cfg->server.access_log && (logs->server = wr_log_open(cfg->server.access_log)) < 0) {
        wr_log(WR_LOG_ERROR, -1, 0, "access_log %s: %s", cfg->server.access_log,
               wr_log_strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < cfg->n_route_access_logs; i++) {
        const char *path = cfg->route_access_logs[i];
        if ((logs->routes[i] = wr_log_open(path)) < 0) {
            wr_log(WR_LOG_ERROR, -1, 0, "access_log %s (of a route): %s", path,
                   wr_log_strerror(errno));
            return -1;
        }
        logs->n_routes = i + 1;
    }
    return 0;
}

/* Every connection, cached file and upstream socket is a descriptor: take
 * the hard limit the service manager allows (LimitNOFILE=) before binding. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        wr_log(WR_LOG_WARN, -1, 0, "raising the open-file limit: %s", strerror(errno));
    else
        wr_log(WR_LOG_DEBUG, -1, 0, "open-file limit raised from %llu to %llu",
               (unsigned long long)old, (unsigned long long)rl.rlim_max);
}

/* Counters, the rate sampler and the timers main runs besides signals. */
static int start_metrics(struct app *app)
{
    app->metrics = wr_metrics_new(app->cfg->server.n_workers);
    if (!app->metrics || wr_metrics_register(app->metrics, app->cfg) < 0)
        return -1;
    app->retire_poll = event_new(app->base, -1, EV_PERSIST, on_retire_poll, app);
    app->status_tick = event_new(app->base, -1, EV_PERSIST, on_status_tick, app);
    struct timeval tick = {STATUS_TICK_MS / 1000, (STATUS_TICK_MS % 1000) * 1000};
    if (!app->retire_poll || !app->status_tick || event_add(app->status_tick, &tick) < 0)
        return -1;
    wr_metrics_rate_add(&app->rate, wr_clock_now_ms(), 0);
    return 0;
}

static int run(struct app *app)
{
    struct wr_access_log_fds logs;
    /* Until weir serves, whoever started it sees why it did not (a log
     * file alone would leave `weir -c` silent with exit status 1). */
    wr_log_echo_stderr(true);
    if (open_logs(app->cfg, &logs) < 0 || attach_caches(app->cfg, NULL) < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an EPIPE, not a death */
    raise_fd_limit();
    app->base = event_base_new();
    if (!app->base || add_signals(app) < 0 || start_ticket_rotation(app) < 0) {
        wr_log(WR_LOG_ERROR, -1, 0, "cannot set up the main event loop");
        return 1;
    }
    if (start_metrics(app) < 0 || collect_inherited(app) < 0)
        return 1;
    app->listeners = calloc(1, sizeof(*app->listeners));
    if (!app->listeners || wr_listener_set_open(app->listeners, app->cfg,
                                                app->cfg->server.n_workers, &app->inherited) < 0)
        return 1;
    /* Sockets first, then the privilege drop: ports below 1024 need root
     * or CAP_NET_BIND_SERVICE. */
    if (start_admin(app) < 0 || check_inherited_claimed(app) < 0)
        return 1;
    if (wr_privileges_drop(&app->cfg->server) < 0)
        return 1;
    if (start_workers(app, &logs) < 0)
        return 1;
    app->checker = wr_health_checker_new(app->base);
    if (!app->checker)
        wr_log(WR_LOG_ERROR, -1, 0, "health checks: out of memory; servers are not checked");
    else
        wr_health_checker_set_config(app->checker, app->cfg);
    start_resolver(app);
    start_stapler(app);
    for (size_t i = 0; i < app->cfg->server.n_listens; i++)
        wr_log(WR_LOG_INFO, -1, 0, "listening on %s%s", app->cfg->server.listens[i].addr.text,
               app->listeners->items[i].is_inherited ? " (socket activation)" : "");
    wr_log(WR_LOG_INFO, -1, 0, "weir %s started: %zu workers", WEIR_VERSION, app->n_workers);
    wr_log_echo_stderr(false);
    sd_notify(0, "READY=1\nSTATUS=serving: 0 connections, 0 req/s");
    event_base_dispatch(app->base);
    wr_log(WR_LOG_INFO, -1, 0, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {"strict", no_argument, NULL, 'S'},       {NULL, 0, NULL, 0},
    };
    if (argc > 1 && strcmp(argv[1], "route") == 0)
        return wr_explain_main(argc - 1, argv + 1);
    const char *path = DEFAULT_CONFIG;
    bool is_check = false, is_strict = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tVh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            is_check = true;
            break;
        case 'S':
            is_strict = true;
            break;
        case 'V':
            print_version();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || (is_strict && !is_check)) {
        usage(stderr);
        return 2;
    }
    struct app app = {0};
    if (!is_check && !(app.tls_keys = wr_tls_keys_new())) {
        fprintf(stderr, "weir: cannot make TLS ticket keys (no randomness)\n");
        return 1;
    }
    app.cfg = load_config(&app, path, true);
    if (!app.cfg) {
        wr_tls_keys_free(app.tls_keys);
        return 1;
    }
    if (is_check && is_strict && n_warnings_reported > 0) {
        fprintf(stderr, "%s: %zu warning%s, which --strict counts as errors\n", path,
                n_warnings_reported, n_warnings_reported == 1 ? "" : "s");
        wr_config_unref(app.cfg);
        return 1;
    }
    if (is_check) {
        printf("%s: ok\n", path);
        wr_config_unref(app.cfg);
        return 0;
    }
    int rc = run(&app);
    app_fini(&app);
    wr_log_close_all();
    return rc;
}
