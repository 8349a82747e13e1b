/*
 * main: command line, start-up order, signals and shutdown.
 *
 * Start-up: load and check the config -> open logs -> bind listeners ->
 * drop privileges -> start workers -> tell systemd READY=1 -> wait for
 * signals. Shutdown (SIGTERM/SIGINT): DRAIN every worker, wait for them up
 * to shutdown_timeout, then STOP the rest. Main does no request work.
 * TLS contexts are built with each snapshot, before privileges drop at
 * start (root-only keys), and ticket keys rotate on a timer here.
 * Reload (SIGHUP) publishes a new snapshot to the workers; changes that
 * need new sockets or files (listen, workers, logs, user) are refused for
 * now with the reason logged (issue #6).
 */
#include <errno.h>
#include <event2/event.h>
#include <grp.h>
#include <pcre2.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "weir/config.h"
#include "weir/listener.h"
#include "weir/log.h"
#include "weir/tls.h"
#include "weir/worker.h"

#define DONE_POLL_MS 50

struct app {
    struct wr_config *cfg;
    struct event_base *base;
    struct wr_listener_set listeners;
    struct wr_worker *workers;
    size_t n_workers;
    struct wr_worker_shared shared;
    struct event *signals[4];
    struct event *done_poll, *deadline;
    struct wr_tls_keys *tls_keys;   /* owned: shared by every snapshot's contexts */
    struct event *ticket_rotation;  /* owned */
    bool is_stopping;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: weir -c FILE      run with FILE (foreground)\n"
                 "       weir -t -c FILE   check FILE and exit\n"
                 "       weir -V           version and library versions\n"
                 "       weir -h           this help\n");
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

/*
 * Refuses what the config schema accepts but this build cannot serve yet, so
 * weir never starts half-configured. Reported like any other config error.
 */
/* Config errors go to stderr at start-up (and for -t), to the error log on
 * reload, where stderr may be nowhere. */
static void report(bool to_log, const char *line)
{
    if (to_log)
        wr_log(WR_LOG_ERROR, -1, 0, "%s", line);
    else
        fprintf(stderr, "%s\n", line);
}

static int check_supported(const struct wr_config *cfg, bool to_log)
{
    int n_errors = 0;
    char line[512];
    for (size_t i = 0; i < cfg->n_routes; i++) {
        if (cfg->routes[i].action == WR_ACTION_PROXY) {
            snprintf(line, sizeof(line),
                     "%s:%u: [route %s] proxy: proxy routes are not available yet", cfg->path,
                     cfg->routes[i].line, cfg->routes[i].name);
            report(to_log, line);
            n_errors++;
        }
    }
    return n_errors ? -1 : 0;
}

/*
 * Certificates and keys are read here, so at start before privileges
 * drop. On reload, a section whose files fail keeps the running one's
 * context (tls.c says why in the log); a new section that fails refuses
 * the reload.
 */
static int attach_tls(struct app *app, struct wr_config *cfg, bool to_log)
{
    if (!cfg->has_default_tls)
        return 0;
    struct wr_config_errors errs = {0};
    const struct wr_tls_set *old = app->cfg ? app->cfg->tls_set : NULL;
    struct wr_tls_set *set = wr_tls_set_new(cfg, app->tls_keys, old, &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        report(to_log, errs.lines[i]);
    wr_config_errors_fini(&errs);
    if (!set)
        return -1;
    wr_tls_set_attach(cfg, set);
    return 0;
}

static struct wr_config *load_config(struct app *app, const char *path, bool to_log)
{
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_load(path, &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        report(to_log, errs.lines[i]);
    wr_config_errors_fini(&errs);
    if (cfg && (check_supported(cfg, to_log) < 0 || attach_tls(app, cfg, to_log) < 0)) {
        wr_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

/* After binding, before serving: setgroups, setgid, setuid (that order:
 * each later step needs the privilege the earlier ones use). */
static int drop_privileges(const struct wr_server_cfg *server)
{
    if (!server->user) {
        if (geteuid() == 0)
            wr_log(WR_LOG_WARN, -1, 0, "running as root: set [server] user to drop privileges");
        return 0;
    }
    struct passwd *pw = getpwnam(server->user);
    if (!pw) {
        wr_log(WR_LOG_ERROR, -1, 0, "user %s: no such user", server->user);
        return -1;
    }
    gid_t gid = pw->pw_gid;
    if (server->group) {
        struct group *gr = getgrnam(server->group);
        if (!gr) {
            wr_log(WR_LOG_ERROR, -1, 0, "group %s: no such group", server->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
        wr_log(WR_LOG_ERROR, -1, 0, "dropping privileges to %s: %s", server->user,
               strerror(errno));
        return -1;
    }
    return 0;
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

/* What a reload cannot change yet without a restart, or NULL. */
static const char *reload_blocker(const struct wr_config *old, const struct wr_config *cfg)
{
    const struct wr_server_cfg *a = &old->server, *b = &cfg->server;
    if (a->n_listens != b->n_listens)
        return "[server] listen";
    for (size_t i = 0; i < a->n_listens; i++) {
        if (strcmp(a->listens[i].addr.text, b->listens[i].addr.text) != 0 ||
            a->listens[i].is_tls != b->listens[i].is_tls)
            return "[server] listen";
    }
    if (a->n_workers != b->n_workers)
        return "[server] workers";
    if (strcmp(a->error_log, b->error_log) != 0)
        return "[server] error_log";
    if ((a->access_log == NULL) != (b->access_log == NULL) ||
        (a->access_log && strcmp(a->access_log, b->access_log) != 0))
        return "[server] access_log";
    if ((a->user == NULL) != (b->user == NULL) || (a->user && strcmp(a->user, b->user) != 0))
        return "[server] user";
    return NULL;
}

/*
 * SIGHUP: parse the file again; on any error keep serving on the running
 * snapshot. Otherwise publish the new one to every worker: connections they
 * accept from then on use it, open ones finish on theirs.
 * TODO(#6): adding and removing listeners on reload.
 */
static void reload(struct app *app)
{
    sd_notify(0, "RELOADING=1");
    struct wr_config *cfg = load_config(app, app->cfg->path, true);
    const char *blocker = cfg ? reload_blocker(app->cfg, cfg) : NULL;
    if (!cfg || blocker) {
        if (blocker)
            wr_log(WR_LOG_ERROR, -1, 0, "reload: changing %s needs a restart", blocker);
        wr_log(WR_LOG_ERROR, -1, 0, "reload failed; still serving the previous configuration");
        wr_config_unref(cfg);
        sd_notify(0, "READY=1");
        return;
    }
    atomic_store_explicit(&app->shared.max_connections, cfg->server.max_connections,
                          memory_order_relaxed);
    wr_log_set_level(cfg->server.log_level);
    /* Listener entries point into the snapshot they came from. */
    for (size_t w = 0; w < app->listeners.n_workers; w++) {
        for (size_t i = 0; i < app->listeners.n_listens; i++)
            wr_listener_get(&app->listeners, w, i)->cfg = &cfg->server.listens[i];
    }
    for (size_t i = 0; i < app->n_workers; i++)
        wr_worker_publish(&app->workers[i], cfg);
    wr_config_unref(app->cfg);
    app->cfg = cfg;
    wr_log(WR_LOG_INFO, -1, 0, "configuration reloaded from %s", cfg->path);
    sd_notify(0, "READY=1");
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
static int start_workers(struct app *app, int access_log_fd)
{
    app->n_workers = app->cfg->server.n_workers;
    app->workers = calloc(app->n_workers, sizeof(*app->workers));
    if (!app->workers)
        return -1;
    atomic_init(&app->shared.max_connections, app->cfg->server.max_connections);
    atomic_init(&app->shared.n_conns, 0);
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
        rc = wr_worker_init(w, (int)i, app->cfg, &app->listeners, access_log_fd, &app->shared);
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
    wr_listener_set_close(&app->listeners);
    for (int i = 0; i < 4; i++) {
        if (app->signals[i])
            event_free(app->signals[i]);
    }
    if (app->deadline)
        event_free(app->deadline);
    if (app->done_poll)
        event_free(app->done_poll);
    if (app->ticket_rotation)
        event_free(app->ticket_rotation);
    if (app->base)
        event_base_free(app->base);
    wr_config_unref(app->cfg);
    wr_tls_keys_free(app->tls_keys); /* after the last snapshot and its contexts */
}

static int open_logs(const struct wr_config *cfg, int *access_log_fd)
{
    int error_fd = wr_log_open(cfg->server.error_log);
    if (error_fd < 0) {
        fprintf(stderr, "weir: error_log %s: %s\n", cfg->server.error_log, strerror(errno));
        return -1;
    }
    wr_log_set_error(error_fd, cfg->server.log_level);
    *access_log_fd = -1;
    if (cfg->server.access_log && (*access_log_fd = wr_log_open(cfg->server.access_log)) < 0) {
        wr_log(WR_LOG_ERROR, -1, 0, "access_log %s: %s", cfg->server.access_log,
               strerror(errno));
        return -1;
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

static int run(struct app *app)
{
    int access_log_fd;
    if (open_logs(app->cfg, &access_log_fd) < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an EPIPE, not a death */
    raise_fd_limit();
    app->base = event_base_new();
    if (!app->base || add_signals(app) < 0 || start_ticket_rotation(app) < 0) {
        wr_log(WR_LOG_ERROR, -1, 0, "cannot set up the main event loop");
        return 1;
    }
    if (wr_listener_set_open(&app->listeners, app->cfg, app->cfg->server.n_workers) < 0)
        return 1;
    if (drop_privileges(&app->cfg->server) < 0)
        return 1;
    if (start_workers(app, access_log_fd) < 0)
        return 1;
    for (size_t i = 0; i < app->cfg->server.n_listens; i++)
        wr_log(WR_LOG_INFO, -1, 0, "listening on %s", app->cfg->server.listens[i].addr.text);
    wr_log(WR_LOG_INFO, -1, 0, "weir %s started: %zu workers", WEIR_VERSION, app->n_workers);
    sd_notify(0, "READY=1");
    event_base_dispatch(app->base);
    wr_log(WR_LOG_INFO, -1, 0, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool is_check = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            is_check = true;
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
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct app app = {0};
    if (!is_check && !(app.tls_keys = wr_tls_keys_new())) {
        fprintf(stderr, "weir: cannot make TLS ticket keys (no randomness)\n");
        return 1;
    }
    app.cfg = load_config(&app, path, false);
    if (!app.cfg) {
        wr_tls_keys_free(app.tls_keys);
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
