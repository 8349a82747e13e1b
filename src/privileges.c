/*
 * privileges: who weir serves as, the drop to that user after binding, and
 * the checks `weir -t` (and the start, before binding) make about it.
 *
 * Not here: binding (listener), opening logs (log), reading certificates
 * (tls): this module only asks whether those will work.
 *
 * How access is checked as another user: root switches its *effective*
 * ids (supplementary groups, egid, euid) to the target's for the duration
 * of a few faccessat(AT_EACCESS) calls, then switches back; the real and
 * saved ids stay root, which is what makes the way back possible. With a
 * non-zero euid the kernel also clears the effective capabilities
 * (CAP_DAC_OVERRIDE and friends), so every answer is the one the user will
 * get after the real drop: the kernel's own permission check, with ACLs,
 * read-only mounts and the search permission of every directory on the
 * way, none of which a stat()-based imitation gets right. glibc applies
 * set*id to every thread, which is why this runs before any exists.
 */
#include "weir/privileges.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weir/log.h"

/* The ids [server] user and group name. */
struct target {
    uid_t uid;
    gid_t gid;
};

/* Resolves server's user (and group). Returns 0, or -1 with the message
 * in why and the key at fault in *key. */
static int find_target(const struct wr_server_cfg *server, struct target *t, const char **key,
                       char *why, size_t cap)
{
    errno = 0;
    const struct passwd *pw = getpwnam(server->user);
    if (!pw) {
        *key = "user";
        snprintf(why, cap, "no such user \"%s\"%s%s", server->user, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        return -1;
    }
    t->uid = pw->pw_uid;
    t->gid = pw->pw_gid;
    if (!server->group)
        return 0;
    errno = 0;
    const struct group *gr = getgrnam(server->group);
    if (!gr) {
        *key = "group";
        snprintf(why, cap, "no such group \"%s\"%s%s", server->group, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        return -1;
    }
    t->gid = gr->gr_gid;
    return 0;
}

/* True when every uid of the process is t's and every gid t's: there is
 * nothing to drop (and without CAP_SETGID, setgroups would fail). */
static bool is_already(const struct target *t)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        return false;
    return ru == t->uid && eu == t->uid && su == t->uid && rg == t->gid && eg == t->gid &&
           sg == t->gid;
}

int wr_privileges_drop(const struct wr_server_cfg *server)
{
    if (!server->user) {
        if (geteuid() == 0)
            wr_log(WR_LOG_WARN, -1, 0, "running as root: set [server] user to drop privileges");
        return 0;
    }
    struct target t;
    const char *key;
    char why[256];
    if (find_target(server, &t, &key, why, sizeof(why)) < 0) {
        wr_log(WR_LOG_ERROR, -1, 0, "[server] %s: %s", key, why);
        return -1;
    }
    if (is_already(&t)) {
        wr_log(WR_LOG_DEBUG, -1, 0, "already running as user %s: nothing to drop", server->user);
        return 0;
    }
    /* setgroups, setgid, setuid: each later step needs the privilege the
     * earlier ones use. */
    if (setgroups(1, &t.gid) < 0 || setgid(t.gid) < 0 || setuid(t.uid) < 0) {
        int err = errno;
        wr_log(WR_LOG_ERROR, -1, 0, "dropping privileges to %s: %s%s", server->user,
               strerror(err), geteuid() != 0 ? " (only root can switch to another user)" : "");
        return -1;
    }
    return 0;
}

/* ---- checks --------------------------------------------------------------- */

struct check {
    const struct wr_config *cfg;
    struct wr_config_errors *errs;
    char who[64]; /* "user www-data" */
};

/* "file:line: [section] key: message", or with "warning: " before the section. */
__attribute__((format(printf, 6, 7))) static void
report(struct check *c, bool is_warning, unsigned line, const char *section, const char *key,
       const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct wr_config_where w = wr_config_where(c->cfg, line);
    wr_config_errors_add(c->errs, is_warning, "%s:%u: %s[%s] %s: %s", w.file, w.line,
                         is_warning ? "warning: " : "", section, key, msg);
}

/* 0 when the effective ids may open path for appending, creating it when
 * it is absent (as wr_log_open does); else -1 with errno. */
static int can_append(const char *path)
{
    if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= sizeof(dir))
        return -1;
    snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS);
}

/* One log file weir opens itself (not stderr), with where it was given. */
struct log_file {
    const char *path;
    const char *key;
    char section[160];
    unsigned line;
};

#define MAX_LOG_FILES_CHECKED (2 + 16)

/* The log files weir opens itself: [server]'s, then routes' own (the
 * first 16 routes naming one: enough to find a directory weir cannot
 * write). */
static size_t log_files(const struct wr_config *cfg, struct log_file *out)
{
    const struct wr_server_cfg *s = &cfg->server;
    size_t n = 0;
    if (strcmp(s->error_log, "stderr") != 0)
        out[n++] = (struct log_file){s->error_log, "error_log", "server", s->error_log_line};
    if (s->access_log && strcmp(s->access_log, "stderr") != 0)
        out[n++] = (struct log_file){s->access_log, "access_log", "server", s->access_log_line};
    for (size_t i = 0; i < cfg->n_routes && n < MAX_LOG_FILES_CHECKED; i++) {
        const struct wr_route *r = &cfg->routes[i];
        if (!r->access_log || strcmp(r->access_log, "stderr") == 0)
            continue;
        out[n] = (struct log_file){r->access_log, "access_log", "", r->access_log_line};
        snprintf(out[n].section, sizeof(out[n].section), "route %s", r->name);
        n++;
    }
    return n;
}

/* As the process is now: weir opens its logs before the drop. */
static void check_logs_now(struct check *c)
{
    struct log_file files[MAX_LOG_FILES_CHECKED];
    size_t n = log_files(c->cfg, files);
    for (size_t i = 0; i < n; i++) {
        if (can_append(files[i].path) < 0)
            report(c, false, files[i].line, files[i].section, files[i].key,
                   "%s: cannot be opened for appending: %s", files[i].path, strerror(errno));
    }
}

/* As the user: SIGUSR1 reopens the logs after the drop. */
static void check_logs_reopen(struct check *c)
{
    struct log_file files[MAX_LOG_FILES_CHECKED];
    size_t n = log_files(c->cfg, files);
    for (size_t i = 0; i < n; i++) {
        if (can_append(files[i].path) < 0)
            report(c, true, files[i].line, files[i].section, files[i].key,
                   "%s: %s cannot write it (%s): reopening it after log rotation (SIGUSR1) "
                   "will fail", files[i].path, c->who, strerror(errno));
    }
}

/* A root the serving identity cannot list and read answers 403. */
static void check_roots(struct check *c)
{
    for (size_t i = 0; i < c->cfg->n_routes; i++) {
        const struct wr_route *r = &c->cfg->routes[i];
        if (r->root && faccessat(AT_FDCWD, r->root, R_OK | X_OK, AT_EACCESS) < 0) {
            char section[160];
            snprintf(section, sizeof(section), "route %s", r->name);
            report(c, true, r->root_line ? r->root_line : r->line, section, "root",
                   "%s: %s cannot read it (%s): its requests will get 403", r->root, c->who,
                   strerror(errno));
        }
    }
}

/* One file a reload reads again after the drop. */
static void check_reread(struct check *c, const char *path, unsigned line, const char *section,
                         const char *key, const char *consequence)
{
    if (path && faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) < 0)
        report(c, true, line, section, key,
               "%s: %s cannot read it (%s): it is read at start, before the privilege drop, "
               "but %s (README: \"Running under systemd\")", path, c->who, strerror(errno),
               consequence);
}

static void check_tls_files(struct check *c)
{
    static const char keep[] = "a reload (SIGHUP) cannot read it again and keeps the old "
                               "certificate";
    for (size_t s = 0; s < c->cfg->n_tls; s++) {
        const struct wr_tls_cfg *t = &c->cfg->tls[s];
        char section[160];
        snprintf(section, sizeof(section), "tls%s%s", t->name ? " " : "", t->name ? t->name : "");
        for (size_t i = 0; i < t->n_certs; i++)
            check_reread(c, t->certs[i], t->cert_lines[i], section, "cert", keep);
        for (size_t i = 0; i < t->n_keys; i++)
            check_reread(c, t->keys[i], t->key_lines[i], section, "key", keep);
    }
    for (size_t u = 0; u < c->cfg->n_upstreams; u++) {
        const struct wr_upstream_cfg *up = &c->cfg->upstreams[u];
        char section[160];
        snprintf(section, sizeof(section), "upstream %s", up->name);
        if (up->tls)
            check_reread(c, up->tls_ca, up->tls_ca_line ? up->tls_ca_line : up->line, section,
                         "tls_ca", "every reload (SIGHUP) will fail");
    }
}

/* What the process switches back to after checking as the user. */
struct saved_ids {
    uid_t euid;
    gid_t egid;
    gid_t *groups; /* owned */
    int n_groups;
};

static int unbecome(struct saved_ids *s)
{
    /* euid first: root's effective capabilities come back with it, and
     * setegid and setgroups need them. */
    int rc = seteuid(s->euid) < 0 || setegid(s->egid) < 0 ||
                     setgroups((size_t)s->n_groups, s->groups) < 0
                 ? -1
                 : 0;
    free(s->groups);
    s->groups = NULL;
    return rc;
}

/* Takes t's ids as the effective ones (see the file comment). Returns 0,
 * or -1 with errno and the process as it was. */
static int become(const struct target *t, struct saved_ids *s)
{
    *s = (struct saved_ids){.euid = geteuid(), .egid = getegid()};
    s->n_groups = getgroups(0, NULL);
    s->groups = s->n_groups >= 0 ? calloc((size_t)s->n_groups + 1, sizeof(gid_t)) : NULL;
    if (!s->groups || (s->n_groups = getgroups(s->n_groups, s->groups)) < 0) {
        free(s->groups);
        s->groups = NULL;
        errno = ENOMEM;
        return -1;
    }
    if (setgroups(1, &t->gid) < 0 || setegid(t->gid) < 0 || seteuid(t->uid) < 0) {
        int err = errno;
        unbecome(s);
        errno = err;
        return -1;
    }
    return 0;
}

/* Root about to drop to t: the checks that need t's eyes. */
static void check_as_target(struct check *c, const struct target *t)
{
    struct saved_ids saved;
    unsigned line = c->cfg->server.user_line;
    if (become(t, &saved) < 0) {
        /* The drop after binding needs the same privileges. */
        report(c, false, line, "server", "user", "cannot become %s: %s", c->who,
               strerror(errno));
        return;
    }
    check_logs_reopen(c);
    check_roots(c);
    check_tls_files(c);
    if (unbecome(&saved) < 0)
        report(c, false, line, "server", "user", "cannot switch back from %s: %s", c->who,
               strerror(errno));
}

void wr_privileges_check(const struct wr_config *cfg, struct wr_config_errors *errs)
{
    const struct wr_server_cfg *s = &cfg->server;
    struct check c = {.cfg = cfg, .errs = errs};
    snprintf(c.who, sizeof(c.who), "uid %u", (unsigned)geteuid());
    struct target t;
    const char *key;
    char why[256];
    if (s->user && find_target(s, &t, &key, why, sizeof(why)) < 0) {
        report(&c, false, strcmp(key, "user") == 0 ? s->user_line : s->group_line, "server", key,
               "%s", why);
        check_logs_now(&c);
        return;
    }
    check_logs_now(&c);
    if (!s->user) {
        check_roots(&c);
        return;
    }
    snprintf(c.who, sizeof(c.who), "user %s", s->user);
    if (is_already(&t)) {
        check_roots(&c);
    } else if (geteuid() != 0 && geteuid() == t.uid) {
        report(&c, false, s->group_line ? s->group_line : s->user_line, "server",
               s->group_line ? "group" : "user",
               "weir runs as %s but with group id %u, not root, so it cannot switch to group "
               "id %u (start it with that group)", s->user, (unsigned)getegid(),
               (unsigned)t.gid);
    } else if (geteuid() != 0) {
        report(&c, false, s->user_line, "server", "user",
               "weir runs as uid %u, not root, so it cannot become %s (start it as root, or "
               "as that user)", (unsigned)geteuid(), s->user);
    } else {
        check_as_target(&c, &t);
    }
}
