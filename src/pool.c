/*
 * pool: upstream connections of one worker (see pool.h).
 *
 * Each distinct (server address, TLS context) gets a struct
 * wr_pool_server holding its idle list and, for TLS, the last session the
 * server gave; lookups scan the short list of servers this worker has
 * talked to (a handful per upstream). Entries live while a snapshot the
 * worker still uses names them (wr_pool_keep) or a connection points to
 * them (n_conns): every reload brings new TLS contexts and may bring new
 * addresses, so entries of the past are swept (wr_pool_sweep) rather than
 * kept forever. A swept entry that still has busy connections is retired:
 * they finish their exchange and close instead of going idle, and the
 * last one frees the entry. A connection's read event is
 * registered once at connect and stays until close: idle connections need
 * it to notice a server closing them, busy ones to read responses.
 *
 * TLS invariants: every path branches on uc->s.tls == NULL first, so
 * plain TCP costs one compare. The write event is armed when the owner
 * wants it OR the record layer needs it (TCP connect, handshake
 * WANT_WRITE, ciphertext the socket did not take yet); only the owner's wish
 * is reported to the owner. Ciphertext that could not be sent counts as
 * taken (stream.c): its bytes wait in the stream, the pool sends them on
 * the next writable event, and the owner never has to offer the same
 * bytes again. Plaintext is assembled in the pool's stage, one per pool
 * (so per worker), never in a buffer per connection.
 */
#include "weir/pool.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "weir/clock.h"
#include "weir/config.h"
#include "weir/stream.h"
#include "weir/tls.h"

struct wr_pool_server {
    struct wr_pool_server *next;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint64_t tls_id;                /* wr_tls_client_id; 0 for plain TCP */
    struct wr_tls_session *session; /* owned: the last one received, or NULL */
    struct wr_upconn *idle;         /* most recently used first */
    uint64_t n_idle;
    uint64_t n_conns;               /* connections pointing here, idle or busy */
    uint64_t max_idle;              /* the cap the last wr_pool_put gave */
    uint64_t peak_busy;             /* most connections busy at once in this window */
    uint64_t last_peak;             /* ... and in the window before */
    bool is_kept;                   /* named by wr_pool_keep since the last sweep */
    bool is_retired;                /* swept while busy: no snapshot in use names it; freed
                                       with its last connection, which never goes idle */
};

struct wr_pool {
    struct event_base *base;
    struct wr_pool_server *servers;
    struct wr_stream_stage *stage; /* owned: TLS plaintext staging of every connection */
    struct wr_pool_stats stats;
    uint64_t window_end_ms;        /* when the busy-peak windows roll next */
};

/* How long one busy-peak window lasts: demand is the larger peak of the
 * current and the last window, so a connection given back is kept while a
 * burst of that size was seen within the last one to two seconds. */
#define DEMAND_WINDOW_MS 1000

struct wr_pool *wr_pool_new(struct event_base *base)
{
    struct wr_pool *pool = calloc(1, sizeof(*pool));
    if (pool && !(pool->stage = wr_stream_stage_new())) {
        free(pool);
        return NULL;
    }
    if (pool)
        pool->base = base;
    return pool;
}

static struct wr_pool_server *find_server(struct wr_pool *pool, const struct wr_listen_addr *addr,
                                          uint64_t tls_id, bool is_creating)
{
    for (struct wr_pool_server *s = pool->servers; s; s = s->next) {
        if (s->tls_id == tls_id && s->addr_len == addr->addr_len &&
            memcmp(&s->addr, &addr->addr, addr->addr_len) == 0) {
            s->is_retired = false; /* a snapshot in use asks for it again */
            return s;
        }
    }
    if (!is_creating)
        return NULL;
    struct wr_pool_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    memcpy(&s->addr, &addr->addr, addr->addr_len);
    s->addr_len = addr->addr_len;
    s->tls_id = tls_id;
    s->next = pool->servers;
    pool->servers = s;
    pool->stats.n_servers++;
    return s;
}

static void free_server(struct wr_pool *pool, struct wr_pool_server *s)
{
    wr_tls_session_free(s->session);
    free(s);
    pool->stats.n_servers--;
}

/* A retired entry goes with its last connection. */
static void release_server(struct wr_pool *pool, struct wr_pool_server *s)
{
    if (!s->is_retired || s->n_conns > 0)
        return;
    for (struct wr_pool_server **pp = &pool->servers; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            free_server(pool, s);
            return;
        }
    }
}

static void unlink_idle(struct wr_upconn *uc)
{
    struct wr_pool_server *s = uc->server;
    for (struct wr_upconn **pp = &s->idle; *pp; pp = &(*pp)->next) {
        if (*pp == uc) {
            *pp = uc->next;
            s->n_idle--;
            uc->pool->stats.n_idle--;
            uc->next = NULL;
            return;
        }
    }
}

static uint64_t n_busy(const struct wr_pool_server *s)
{
    return s->n_conns - s->n_idle;
}

/* A connection of s just became busy: the window's peak may grow. */
static void note_busy(struct wr_pool_server *s)
{
    if (n_busy(s) > s->peak_busy)
        s->peak_busy = n_busy(s);
}

/* Connections s needed at once lately (see DEMAND_WINDOW_MS). */
static uint64_t demand(const struct wr_pool_server *s)
{
    return s->peak_busy > s->last_peak ? s->peak_busy : s->last_peak;
}

static void free_upconn(struct wr_upconn *uc)
{
    event_del(&uc->ev_read);
    event_del(&uc->ev_write);
    /* close_notify keeps the session resumable (OpenSSL drops a session
     * whose connection ended without one) and is polite. */
    if (!uc->is_connecting)
        wr_stream_close_notify(&uc->s);
    wr_stream_fini(&uc->s);
    free(uc->why);
    uc->why = NULL;
    uc->pool->stats.n_open--;
    uc->server->n_conns--;
    free(uc);
}

/* free_upconn, and the entry too when it was retired and this was its last
 * connection. Not while walking the entry list (wr_pool_tick). */
static void close_upconn(struct wr_upconn *uc)
{
    struct wr_pool *pool = uc->pool;
    struct wr_pool_server *s = uc->server;
    free_upconn(uc);
    release_server(pool, s);
}

/* Arms ev_write when the owner or the record layer needs it. */
static void sync_write(struct wr_upconn *uc)
{
    if (uc->is_detached)
        return; /* the owner's events now */
    bool need = uc->is_write_wanted;
    if (uc->s.tls) {
        need = need || wr_stream_wants_write(&uc->s) ||
               (uc->is_connecting && uc->error == 0 &&
                (!uc->is_handshaking || uc->is_handshake_write));
    }
    if (need == uc->is_write_armed)
        return;
    if (need)
        event_add(&uc->ev_write, NULL);
    else
        event_del(&uc->ev_write);
    uc->is_write_armed = need;
}

/* A TLS connect failed with err: kept for wr_upconn_connect_error. */
__attribute__((format(printf, 3, 4))) static void fail_connect(struct wr_upconn *uc, int err,
                                                               const char *fmt, ...)
{
    char why[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    uc->error = err;
    free(uc->why);
    uc->why = strdup(why); /* NULL: the log line lacks the reason, nothing worse */
}

/* Writes the preamble on the fresh socket (before TLS, before any request
 * byte): a few dozen bytes into an empty send buffer go at once. Returns 0,
 * or -1 with errno. */
static int write_preamble(struct wr_upconn *uc)
{
    while (uc->preamble_len > 0) {
        ssize_t w = send(uc->s.fd, uc->preamble, uc->preamble_len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0 || errno == EAGAIN)
                errno = EAGAIN; /* never on a connected empty socket */
            return -1;
        }
        memmove(uc->preamble, uc->preamble + w, uc->preamble_len - (size_t)w);
        uc->preamble_len = (uint8_t)(uc->preamble_len - (size_t)w);
    }
    return 0;
}

void wr_upconn_set_preamble(struct wr_upconn *uc, const char *p, size_t n)
{
    if (n > sizeof(uc->preamble))
        n = 0;
    memcpy(uc->preamble, p, n);
    uc->preamble_len = (uint8_t)n;
}

/* Advances a TLS connect. Returns true when it ended (uc->error tells how):
 * the owner hears of it. */
static bool advance_tls_connect(struct wr_upconn *uc, short what)
{
    if (uc->error != 0)
        return false; /* already reported */
    if (!uc->is_handshaking) {
        if (!(what & EV_WRITE))
            return false;
        int err = wr_stream_connect_error(&uc->s);
        if (err != 0) {
            fail_connect(uc, err, "connect: %s", strerror(err));
            sync_write(uc);
            return true;
        }
        uc->is_handshaking = true;
        if (write_preamble(uc) < 0) {
            fail_connect(uc, errno, "send: %s", strerror(errno));
            sync_write(uc);
            return true;
        }
    }
    char why[128];
    enum wr_tls_result r = wr_stream_handshake(&uc->s, why, sizeof(why));
    uc->is_handshake_write = r == WR_TLS_WANT_WRITE;
    if (r == WR_TLS_WANT_READ || r == WR_TLS_WANT_WRITE) {
        sync_write(uc);
        return false;
    }
    if (r == WR_TLS_DONE)
        uc->is_connecting = false;
    else
        fail_connect(uc, EPROTO, "TLS handshake: %s", why);
    sync_write(uc);
    return true;
}

/* TLS work due on an event. Returns the events still for the owner. */
static short tls_event(struct wr_upconn *uc, short what)
{
    if (uc->is_connecting)
        return advance_tls_connect(uc, what) ? EV_WRITE : 0;
    if ((what & EV_WRITE) && wr_stream_wants_write(&uc->s)) {
        int r = wr_stream_flush(&uc->s);
        sync_write(uc);
        if (r < 0) /* the stream keeps the error: show it to the owner */
            return uc->is_read_paused ? EV_WRITE : EV_READ | EV_WRITE;
    }
    if (!uc->is_write_wanted)
        what &= ~EV_WRITE;
    return what;
}

static void on_upconn_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct wr_upconn *uc = arg;
    if (uc->s.tls && uc->on_event && (what = tls_event(uc, what)) == 0)
        return;
    if (uc->on_event) {
        uc->on_event(uc, what, uc->arg);
        return;
    }
    /* Idle: the server closed it, or sent something nobody asked for.
     * A late TLS session ticket is neither: read, the connection stays. */
    if ((what & EV_READ) && wr_stream_idle_check(&uc->s))
        return;
    unlink_idle(uc);
    close_upconn(uc);
}

struct wr_upconn *wr_pool_get(struct wr_pool *pool, const struct wr_listen_addr *addr,
                              const struct wr_tls_client *tls, wr_upconn_fn on_event, void *arg)
{
    struct wr_pool_server *s = find_server(pool, addr, wr_tls_client_id(tls), false);
    struct wr_upconn *uc = s ? s->idle : NULL;
    if (!uc) {
        pool->stats.n_misses++;
        return NULL;
    }
    s->idle = uc->next;
    s->n_idle--;
    pool->stats.n_idle--;
    pool->stats.n_hits++;
    uc->next = NULL;
    uc->on_event = on_event;
    uc->arg = arg;
    uc->n_requests++;
    note_busy(s);
    wr_stream_set_idle(&uc->s, false); /* a bare EOF may truncate again */
    return uc;
}

/* TLS for uc: the handshake starts once TCP is connected. */
static int start_tls(struct wr_upconn *uc, const struct wr_tls_client *tls, size_t server)
{
    if (wr_stream_tls_client(&uc->s, tls, server, &uc->server->session, uc->pool->stage) < 0)
        return -1;
    uc->is_connecting = true; /* until the handshake is done, even if TCP is */
    return 0;
}

struct wr_upconn *wr_pool_connect(struct wr_pool *pool, const struct wr_listen_addr *addr,
                                  const struct wr_tls_client *tls, size_t server,
                                  wr_upconn_fn on_event, void *arg)
{
    struct wr_pool_server *s = find_server(pool, addr, wr_tls_client_id(tls), true);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    struct wr_upconn *uc = calloc(1, sizeof(*uc));
    if (!uc) {
        errno = ENOMEM;
        return NULL;
    }
    bool is_connecting;
    if (wr_stream_connect(&uc->s, addr, &is_connecting) < 0) {
        int err = errno;
        free(uc);
        errno = err;
        return NULL;
    }
    int fd = uc->s.fd;
    uc->pool = pool;
    uc->server = s;
    s->n_conns++;
    note_busy(s);
    uc->on_event = on_event;
    uc->arg = arg;
    uc->n_requests = 1;
    uc->is_connecting = is_connecting;
    event_assign(&uc->ev_read, pool->base, fd, EV_READ | EV_PERSIST, on_upconn_event, uc);
    event_assign(&uc->ev_write, pool->base, fd, EV_WRITE | EV_PERSIST, on_upconn_event, uc);
    pool->stats.n_open++;
    if ((tls && start_tls(uc, tls, server) < 0) || event_add(&uc->ev_read, NULL) < 0) {
        close_upconn(uc);
        errno = ENOMEM;
        return NULL;
    }
    /* TLS: the first writable event reports the TCP connect (or, on a
     * socket connected at once, starts the handshake). */
    if (uc->s.tls)
        sync_write(uc);
    else if (is_connecting)
        wr_upconn_want_write(uc, true);
    return uc;
}

int wr_upconn_connect_error(struct wr_upconn *uc, char *why, size_t cap)
{
    if (uc->s.tls) {
        snprintf(why, cap, "%s", uc->why ? uc->why : "");
        return uc->is_connecting && uc->error == 0 ? EINPROGRESS : uc->error;
    }
    int err = wr_stream_connect_error(&uc->s);
    if (err == 0)
        uc->is_connecting = false;
    snprintf(why, cap, "connect: %s", strerror(err));
    return err;
}

bool wr_upconn_is_resumed(const struct wr_upconn *uc)
{
    return uc->s.tls && wr_tls_is_resumed(wr_stream_tls(&uc->s));
}

ssize_t wr_upconn_read(struct wr_upconn *uc, void *buf, size_t cap)
{
    ssize_t n = wr_stream_read(&uc->s, buf, cap);
    /* Records OpenSSL already pulled off the socket never make it
     * readable again: come back for them on the next loop turn. */
    if (n > 0 && uc->s.tls && !uc->is_read_paused && wr_stream_has_pending(&uc->s))
        event_active(&uc->ev_read, EV_READ, 0);
    return n;
}

ssize_t wr_upconn_writev(struct wr_upconn *uc, const struct iovec *iov, int n)
{
    if (uc->preamble_len > 0 && !uc->s.tls && write_preamble(uc) < 0)
        return -1; /* plain TCP: the owner's first write carries it */
    ssize_t w = wr_stream_writev(&uc->s, iov, n);
    if (uc->s.tls)
        sync_write(uc); /* a record may wait now, or the one waiting went */
    return w;
}

int wr_upconn_shutdown(struct wr_upconn *uc)
{
    return wr_stream_shutdown(&uc->s);
}

void wr_upconn_close(struct wr_upconn *uc)
{
    close_upconn(uc);
}

void wr_pool_put(struct wr_upconn *uc, uint64_t max_idle, uint64_t idle_ms)
{
    struct wr_pool_server *s = uc->server;
    /* A retired entry's connections are for no snapshot in use any more.
     * A TLS connection goes idle only with nothing owed either way. Past
     * max_idle, a connection stays only while the entry holds no more
     * connections than were busy at once lately: under a steady load of
     * N requests in flight, closing the ones over max_idle would make
     * every burst connect again (wr_pool_tick trims them once it passed). */
    s->max_idle = max_idle;
    bool is_over = s->n_idle >= max_idle && s->n_conns > demand(s);
    if (s->is_retired || is_over || uc->is_connecting || !wr_stream_is_reusable(&uc->s)) {
        close_upconn(uc);
        return;
    }
    uc->on_event = NULL;
    uc->arg = NULL;
    wr_stream_set_idle(&uc->s, true); /* a server's bare close is a clean one */
    wr_upconn_want_write(uc, false);
    wr_upconn_pause_read(uc, false);
    uc->idle_until_ms = wr_clock_now_ms() + idle_ms;
    uc->next = s->idle;
    s->idle = uc;
    s->n_idle++;
    uc->pool->stats.n_idle++;
}

void wr_upconn_pause_read(struct wr_upconn *uc, bool is_paused)
{
    if (is_paused == uc->is_read_paused || uc->is_detached)
        return;
    if (is_paused)
        event_del(&uc->ev_read);
    else
        event_add(&uc->ev_read, NULL);
    uc->is_read_paused = is_paused;
    if (!is_paused && !uc->is_connecting && wr_stream_has_pending(&uc->s))
        event_active(&uc->ev_read, EV_READ, 0); /* records read before the pause */
}

void wr_upconn_want_write(struct wr_upconn *uc, bool is_wanted)
{
    uc->is_write_wanted = is_wanted && !uc->is_detached;
    sync_write(uc);
}

struct wr_stream *wr_upconn_detach(struct wr_upconn *uc)
{
    event_del(&uc->ev_read);
    event_del(&uc->ev_write);
    uc->is_read_paused = true;
    uc->is_write_wanted = uc->is_write_armed = false;
    uc->is_detached = true;
    return &uc->s;
}

/* Closes the idle connections of s that expired at now. */
static void expire_idle(struct wr_pool *pool, struct wr_pool_server *s, uint64_t now)
{
    struct wr_upconn **pp = &s->idle;
    while (*pp) {
        struct wr_upconn *uc = *pp;
        if (now < uc->idle_until_ms) {
            pp = &uc->next;
            continue;
        }
        *pp = uc->next;
        s->n_idle--;
        pool->stats.n_idle--;
        free_upconn(uc);
    }
}

/*
 * A window ended: the peak rolls, and idle connections over what s may
 * keep (max_idle, or more while the demand lasts) are closed by half of
 * the excess, least recently used first, so the pool shrinks back to
 * max_idle within seconds after a load, not at once if it comes back.
 */
static void trim_idle(struct wr_pool *pool, struct wr_pool_server *s)
{
    s->last_peak = s->peak_busy;
    s->peak_busy = n_busy(s);
    uint64_t want = demand(s) > n_busy(s) ? demand(s) - n_busy(s) : 0;
    if (want < s->max_idle)
        want = s->max_idle;
    if (s->n_idle <= want)
        return;
    uint64_t keep = s->n_idle - (s->n_idle - want + 1) / 2;
    struct wr_upconn **pp = &s->idle;
    for (uint64_t i = 0; i < keep && *pp; i++)
        pp = &(*pp)->next;
    while (*pp) {
        struct wr_upconn *uc = *pp;
        *pp = uc->next;
        s->n_idle--;
        pool->stats.n_idle--;
        free_upconn(uc);
    }
}

void wr_pool_tick(struct wr_pool *pool, uint64_t now)
{
    bool is_rolling = now >= pool->window_end_ms;
    if (is_rolling)
        pool->window_end_ms = now + DEMAND_WINDOW_MS;
    for (struct wr_pool_server *s = pool->servers; s; s = s->next) {
        expire_idle(pool, s, now);
        if (is_rolling)
            trim_idle(pool, s);
    }
}

/* Closes the idle connections of s (the entry stays). */
static void close_idle(struct wr_pool *pool, struct wr_pool_server *s)
{
    while (s->idle) {
        struct wr_upconn *uc = s->idle;
        s->idle = uc->next;
        s->n_idle--;
        pool->stats.n_idle--;
        free_upconn(uc);
    }
}

void wr_pool_free(struct wr_pool *pool)
{
    if (!pool)
        return;
    while (pool->servers) {
        struct wr_pool_server *s = pool->servers;
        pool->servers = s->next;
        close_idle(pool, s);
        free_server(pool, s);
    }
    wr_stream_stage_free(pool->stage);
    free(pool);
}

/* True when cfg has a server at s's address reached with s's TLS context
 * (plain TCP: any upstream without TLS). */
static bool is_named_by(const struct wr_pool_server *s, const struct wr_config *cfg)
{
    for (size_t u = 0; u < cfg->n_upstreams; u++) {
        const struct wr_upstream_cfg *up = &cfg->upstreams[u];
        if (wr_tls_client_id(up->tls_client) != s->tls_id)
            continue;
        for (size_t i = 0; i < up->n_servers; i++) {
            const struct wr_listen_addr *a = &up->servers[i].addr;
            if (a->addr_len == s->addr_len && memcmp(&a->addr, &s->addr, s->addr_len) == 0)
                return true;
        }
    }
    return false;
}

void wr_pool_keep(struct wr_pool *pool, const struct wr_config *cfg)
{
    for (struct wr_pool_server *s = pool->servers; s; s = s->next)
        s->is_kept = s->is_kept || is_named_by(s, cfg);
}

void wr_pool_sweep(struct wr_pool *pool)
{
    for (struct wr_pool_server **pp = &pool->servers; *pp;) {
        struct wr_pool_server *s = *pp;
        bool is_kept = s->is_kept;
        s->is_kept = false;
        if (is_kept) {
            s->is_retired = false;
            pp = &s->next;
            continue;
        }
        /* Only a snapshot nobody uses could take these again. */
        close_idle(pool, s);
        if (s->n_conns > 0) {
            s->is_retired = true;
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        free_server(pool, s);
    }
}

const struct wr_pool_stats *wr_pool_stats(const struct wr_pool *pool)
{
    return &pool->stats;
}

const struct wr_stream_stats *wr_pool_stream_stats(const struct wr_pool *pool)
{
    return wr_stream_stage_stats(pool->stage);
}
