/*
 * cache_disk: the disk tier (file format, budget and threads: see
 * cache_disk.h). Not a cache policy: it keeps and finds what cache.c puts,
 * the way cache_store does in memory.
 *
 * Invariants:
 *  - Only the writer thread creates files and directories: it writes a
 *    file under tmp/ and renames it into place, so a real name always
 *    holds a whole file, and a file under a real name never changes (a
 *    reader's open fd sees one version; a replacement is a new inode).
 *  - Renames, unlinks and rmdirs of the tree, with the byte and file
 *    counts they change, happen under fs_mu. Lookups read without it.
 *  - The scan at open counts directory XX only once it holds fs_mu for
 *    it; a removal in a directory the scan has not reached yet is not
 *    subtracted (the scan will not see the file), so the counts are exact
 *    once the scan is done.
 *
 * Locks: mu guards the queue and the writer's flags; fs_mu the tree's
 * structure and counts. Neither is taken on a lookup that finds a good
 * file. Why mutexes: the writer sleeps on a condition variable while the
 * queue is empty (puts come once per stored response, not per hit); a
 * rename or unlink and its accounting must be one step for the counts to
 * stay exact with removers on any thread.
 */
#include "weir/cache_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "WRCD"
#define HEADER_SIZE 56
#define FIRST_READ 4096
#define DEFAULT_QUEUE 64
/* Files collected per eviction walk: the oldest this many. */
#define EVICT_BATCH 1024
/* A hit rewrites mtime only when it is older than this: LRU by mtime,
 * at most one inode write per file a minute (less with a short inactive:
 * a quarter of it, so a file in use never looks inactive). */
#define TOUCH_AFTER_SEC 60
/* The writer looks for inactive files every quarter of inactive, within
 * these bounds. */
#define SWEEP_MIN_MS 1000
#define SWEEP_MAX_MS 60000
#define N_DIRS 256
#define DIR_NAME_LEN 20  /* "xx/" + 16 hex + NUL */
#define FILE_NAME_LEN 17 /* 16 hex + NUL */
#define REL_LEN (DIR_NAME_LEN + FILE_NAME_LEN)

struct file_header {
    char magic[4];
    uint32_t version;
    uint32_t meta_version;
    uint32_t key_len, sec_len, head_len, meta_len;
    uint32_t reserved;
    uint64_t body_len;
    uint64_t stored_ms;
    uint64_t check;
};
_Static_assert(sizeof(struct file_header) == HEADER_SIZE, "the file format's header");

struct wr_cache_disk {
    int root_fd, tmp_fd;
    uint64_t k0, k1; /* the seed: key of the name and check hashes */
    struct wr_cache_disk_opts opts;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_idle;
    struct wr_cache_entry **queue; /* (mu) ring of cap */
    size_t head, n;                /* (mu) */
    bool is_busy;                  /* (mu) the writer holds an entry or scans */
    bool is_stopping;              /* (mu) */
    atomic_bool is_stop;           /* read by the scan's loop without mu */
    pthread_mutex_t fs_mu;
    unsigned scan_pos;             /* (fs_mu) directories 00..scan_pos-1 are counted */
    uint64_t tmp_seq;              /* the writer's */
    _Atomic int64_t bytes, files;
    _Atomic uint64_t writes, dropped, evictions, corrupt, write_errors, expired;
    atomic_bool is_scanned;
    int64_t touch_after_s;         /* set at open (TOUCH_AFTER_SEC, or less) */
    uint64_t sweep_ms;             /* 0: no inactive sweeps */
    struct timespec next_sweep;    /* the writer's; CLOCK_MONOTONIC */
};

/* ---- hashing: SipHash-2-4, keyed by the directory's seed ------------------- */

struct sip {
    uint64_t v[4];
    uint64_t tail;
    unsigned n_tail;
    uint64_t total;
};

static uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static void sip_round(uint64_t *v)
{
    v[0] += v[1], v[1] = rotl(v[1], 13), v[1] ^= v[0], v[0] = rotl(v[0], 32);
    v[2] += v[3], v[3] = rotl(v[3], 16), v[3] ^= v[2];
    v[0] += v[3], v[3] = rotl(v[3], 21), v[3] ^= v[0];
    v[2] += v[1], v[1] = rotl(v[1], 17), v[1] ^= v[2], v[2] = rotl(v[2], 32);
}

static void sip_word(struct sip *s, uint64_t m)
{
    s->v[3] ^= m;
    sip_round(s->v);
    sip_round(s->v);
    s->v[0] ^= m;
}

static void sip_init(struct sip *s, const struct wr_cache_disk *d)
{
    *s = (struct sip){.v = {d->k0 ^ 0x736f6d6570736575ULL, d->k1 ^ 0x646f72616e646f6dULL,
                            d->k0 ^ 0x6c7967656e657261ULL, d->k1 ^ 0x7465646279746573ULL}};
}

static void sip_update(struct sip *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    s->total += len;
    for (; len > 0 && s->n_tail > 0; p++, len--) {
        s->tail |= (uint64_t)*p << (8 * s->n_tail);
        if (++s->n_tail == 8) {
            sip_word(s, s->tail);
            s->tail = 0;
            s->n_tail = 0;
        }
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t m;
        memcpy(&m, p, 8); /* host order: the format is per host */
        sip_word(s, m);
    }
    for (; len > 0; p++, len--)
        s->tail |= (uint64_t)*p << (8 * s->n_tail++);
}

static uint64_t sip_final(struct sip *s)
{
    sip_word(s, (s->total << 56) | s->tail);
    s->v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(s->v);
    return s->v[0] ^ s->v[1] ^ s->v[2] ^ s->v[3];
}

static uint64_t dir_hash(const struct wr_cache_disk *d, struct wr_str key)
{
    if (d->opts.dir_hash)
        return d->opts.dir_hash(key);
    struct sip s;
    sip_init(&s, d);
    sip_update(&s, key.ptr, key.len);
    return sip_final(&s);
}

/* "xx/<16 hex>" of key; returns the directory's index (xx). */
static unsigned dir_name(const struct wr_cache_disk *d, struct wr_str key, char *out)
{
    uint64_t h = dir_hash(d, key);
    snprintf(out, DIR_NAME_LEN, "%02x/%016llx", (unsigned)(h >> 56), (unsigned long long)h);
    return (unsigned)(h >> 56);
}

/* The variant's file name: the key's length first, so that key and
 * secondary cannot trade bytes. */
static void file_name(const struct wr_cache_disk *d, struct wr_str key, struct wr_str sec,
                      char *out)
{
    struct sip s;
    uint64_t len = key.len;
    sip_init(&s, d);
    sip_update(&s, &len, sizeof(len));
    sip_update(&s, key.ptr, key.len);
    sip_update(&s, sec.ptr, sec.len);
    snprintf(out, FILE_NAME_LEN, "%016llx", (unsigned long long)sip_final(&s));
}

/* The header's check: its first 48 bytes, then the blobs. */
static uint64_t header_check(const struct wr_cache_disk *d, const struct file_header *h,
                             const char *blobs, size_t blobs_len)
{
    struct sip s;
    sip_init(&s, d);
    sip_update(&s, h, offsetof(struct file_header, check));
    sip_update(&s, blobs, blobs_len);
    return sip_final(&s);
}

static bool is_hex_name(const char *name, size_t len)
{
    if (strlen(name) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    }
    return true;
}

/* ---- the tree's structure and counts (fs_mu) -------------------------------- */

/* Counts a change in directory xx (fs_mu held): not before the scan at
 * open has counted that directory. */
static void account(struct wr_cache_disk *d, unsigned xx, int64_t bytes, int64_t files)
{
    if (xx >= d->scan_pos)
        return;
    atomic_fetch_add_explicit(&d->bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->files, files, memory_order_relaxed);
}

/* Removes dir/name (relative to the root) if it is still there, counted
 * in *counter. True when this call removed it. */
static bool remove_file(struct wr_cache_disk *d, unsigned xx, const char *dir, const char *name,
                        _Atomic uint64_t *counter)
{
    char rel[REL_LEN];
    snprintf(rel, sizeof(rel), "%.19s/%.16s", dir, name);
    pthread_mutex_lock(&d->fs_mu);
    struct stat st;
    bool is_removed = fstatat(d->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                      unlinkat(d->root_fd, rel, 0) == 0;
    if (is_removed) {
        account(d, xx, -(int64_t)st.st_size, -1);
        if (counter)
            atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&d->fs_mu);
    return is_removed;
}

/* Removes the key directory if empty (a later write makes it again). */
static void remove_dir_if_empty(struct wr_cache_disk *d, const char *dir)
{
    pthread_mutex_lock(&d->fs_mu);
    (void)unlinkat(d->root_fd, dir, AT_REMOVEDIR); /* ENOTEMPTY: still in use */
    pthread_mutex_unlock(&d->fs_mu);
}

/* ---- reading a file's header --------------------------------------------------- */

enum verdict { FILE_OK, FILE_OTHER_KEY, FILE_CORRUPT, FILE_UNREADABLE };

static int grow_buf(struct wr_cache_disk_hit *hit, size_t need)
{
    if (hit->buf_cap >= need)
        return 0;
    size_t cap = need < FIRST_READ ? FIRST_READ : need;
    char *buf = realloc(hit->buf, cap);
    if (!buf)
        return -1;
    hit->buf = buf;
    hit->buf_cap = cap;
    return 0;
}

/* Whether h's fields are those of a whole file of size bytes; *blobs_len
 * set. */
static bool is_header_sane(const struct wr_cache_disk *d, const struct file_header *h,
                           uint64_t size, size_t *blobs_len)
{
    if (memcmp(h->magic, MAGIC, 4) != 0 || h->version != WR_CACHE_DISK_VERSION ||
        h->meta_version != d->opts.meta_version)
        return false;
    uint64_t blobs = (uint64_t)h->key_len + h->sec_len + h->head_len + h->meta_len;
    if (HEADER_SIZE + blobs > WR_CACHE_DISK_HEADER_MAX)
        return false;
    *blobs_len = (size_t)blobs;
    return h->body_len <= size && size - h->body_len == HEADER_SIZE + blobs;
}

/* Reads fd's header and blobs into hit (fields set when FILE_OK). With
 * want_key set, a file of another key is FILE_OTHER_KEY. */
static enum verdict read_header(const struct wr_cache_disk *d, int fd, const struct wr_str *want_key,
                                struct wr_cache_disk_hit *hit, struct stat *st)
{
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || grow_buf(hit, FIRST_READ) < 0)
        return FILE_UNREADABLE;
    size_t first = (uint64_t)st->st_size < hit->buf_cap ? (size_t)st->st_size : hit->buf_cap;
    ssize_t got = pread(fd, hit->buf, first, 0);
    if (got < 0)
        return FILE_UNREADABLE;
    struct file_header h;
    size_t blobs_len;
    if ((size_t)got < HEADER_SIZE)
        return FILE_CORRUPT;
    memcpy(&h, hit->buf, HEADER_SIZE);
    if (!is_header_sane(d, &h, (uint64_t)st->st_size, &blobs_len))
        return FILE_CORRUPT;
    if (want_key && h.key_len != want_key->len)
        return FILE_OTHER_KEY; /* a hash collision: no need to read more */
    size_t total = HEADER_SIZE + blobs_len;
    if ((size_t)got < total) {
        if (grow_buf(hit, total) < 0)
            return FILE_UNREADABLE;
        ssize_t more = pread(fd, hit->buf + got, total - (size_t)got, got);
        if (more < 0)
            return FILE_UNREADABLE;
        if ((size_t)more != total - (size_t)got)
            return FILE_CORRUPT;
    }
    const char *p = hit->buf + HEADER_SIZE;
    if (header_check(d, &h, p, blobs_len) != h.check)
        return FILE_CORRUPT;
    if (want_key && memcmp(p, want_key->ptr, want_key->len) != 0)
        return FILE_OTHER_KEY;
    hit->key = (struct wr_str){p, h.key_len};
    hit->secondary = (struct wr_str){p + h.key_len, h.sec_len};
    hit->head = (struct wr_str){hit->secondary.ptr + h.sec_len, h.head_len};
    hit->meta = (struct wr_str){hit->head.ptr + h.head_len, h.meta_len};
    hit->body_off = total;
    hit->body_len = h.body_len;
    hit->stored_ms = h.stored_ms;
    return FILE_OK;
}

/* ---- lookups ------------------------------------------------------------------ */

void wr_cache_disk_hit_init(struct wr_cache_disk_hit *hit)
{
    *hit = (struct wr_cache_disk_hit){.fd = -1};
}

void wr_cache_disk_hit_release(struct wr_cache_disk_hit *hit)
{
    if (hit->fd >= 0)
        close(hit->fd);
    hit->fd = -1;
    hit->key = hit->secondary = hit->head = hit->meta = (struct wr_str){NULL, 0};
}

void wr_cache_disk_hit_fini(struct wr_cache_disk_hit *hit)
{
    wr_cache_disk_hit_release(hit);
    free(hit->buf);
    hit->buf = NULL;
    hit->buf_cap = 0;
}

/* The names of the variant files in dfd (at most max), without a
 * malloc: getdents64 into the stack. Returns how many. */
static size_t list_variants(int dfd, char (*names)[FILE_NAME_LEN], size_t max)
{
    char buf[4096] __attribute__((aligned(8)));
    size_t n = 0;
    for (;;) {
        ssize_t got = getdents64(dfd, buf, sizeof(buf));
        if (got <= 0)
            return n;
        for (ssize_t at = 0; at < got;) {
            const struct dirent64 *de = (const struct dirent64 *)(buf + at);
            at += de->d_reclen;
            if (!is_hex_name(de->d_name, FILE_NAME_LEN - 1))
                continue;
            memcpy(names[n++], de->d_name, FILE_NAME_LEN);
            if (n == max)
                return n;
        }
    }
}

/* LRU: a hit makes the file young again, once a minute at most. */
static void touch(const struct wr_cache_disk *d, int fd, const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (st->st_mtim.tv_sec + d->touch_after_s > now.tv_sec)
        return;
    const struct timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    (void)futimens(fd, times); /* a read-only cache directory just loses LRU order */
}

/* Opens variant name of key's directory dir (as path from dfd); true
 * when it is key's and match accepts it (hit->fd then holds it). */
static bool try_variant(struct wr_cache_disk *d, unsigned xx, const char *dir, int dfd,
                        const char *path, const char *name, struct wr_str key,
                        wr_cache_disk_match_fn match, void *arg, struct wr_cache_disk_hit *hit)
{
    /* O_NONBLOCK: a FIFO planted in the tree must not hang a worker in
     * open (fstat then refuses it); no effect on a regular file. */
    int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st;
    enum verdict v = read_header(d, fd, &key, hit, &st);
    if (v == FILE_OK && (!match || match(hit->secondary, hit->meta, arg))) {
        touch(d, fd, &st);
        hit->fd = fd;
        return true;
    }
    close(fd);
    if (v == FILE_CORRUPT)
        remove_file(d, xx, dir, name, &d->corrupt);
    return false;
}

bool wr_cache_disk_get(struct wr_cache_disk *d, struct wr_str key, wr_cache_disk_match_fn match,
                       void *arg, struct wr_cache_disk_hit *hit)
{
    wr_cache_disk_hit_release(hit);
    char dir[DIR_NAME_LEN], plain[FILE_NAME_LEN], rel[REL_LEN];
    unsigned xx = dir_name(d, key, dir);
    /* Most responses have no Vary: the variant with an empty secondary
     * key is opened by name first, without listing the directory (four
     * system calls for a hit instead of eight). */
    file_name(d, key, (struct wr_str){"", 0}, plain);
    snprintf(rel, sizeof(rel), "%.19s/%.16s", dir, plain);
    if (try_variant(d, xx, dir, d->root_fd, rel, plain, key, match, arg, hit))
        return true;
    int dfd = openat(d->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0)
        return false;
    char names[WR_CACHE_DISK_MAX_VARIANTS][FILE_NAME_LEN];
    size_t n = list_variants(dfd, names, WR_CACHE_DISK_MAX_VARIANTS);
    bool is_hit = false;
    for (size_t i = 0; i < n && !is_hit; i++) {
        if (strcmp(names[i], plain) != 0)
            is_hit = try_variant(d, xx, dir, dfd, names[i], names[i], key, match, arg, hit);
    }
    close(dfd);
    if (!is_hit)
        wr_cache_disk_hit_release(hit);
    return is_hit;
}

/* ---- walks of the tree (the writer's scan and eviction, purge by prefix) ---- */

/* Called for each file dir/name (dfd: dir, open); false stops the walk. */
typedef bool (*visit_fn)(struct wr_cache_disk *d, unsigned xx, const char *dir, int dfd,
                         const char *name, void *arg);

/* Variant names read per key directory in a walk: more than a lookup
 * reads, so that a directory over WR_CACHE_DISK_MAX_VARIANTS (a trim
 * that failed) is still seen whole by eviction and purges. */
#define WALK_NAMES (4 * WR_CACHE_DISK_MAX_VARIANTS)

/* Visits the files under directory xx. Returns false when fn stopped. */
static bool walk_xx(struct wr_cache_disk *d, unsigned xx, visit_fn fn, void *arg)
{
    char xname[12];
    snprintf(xname, sizeof(xname), "%02x", xx);
    int xfd = openat(d->root_fd, xname, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *xd = xfd < 0 ? NULL : fdopendir(xfd);
    if (!xd) {
        if (xfd >= 0)
            close(xfd);
        return true;
    }
    bool is_going = true;
    for (struct dirent *ke; is_going && (ke = readdir(xd));) {
        if (!is_hex_name(ke->d_name, FILE_NAME_LEN - 1))
            continue;
        char dir[DIR_NAME_LEN];
        snprintf(dir, sizeof(dir), "%.2s/%.16s", xname, ke->d_name);
        int kfd = openat(xfd, ke->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (kfd < 0)
            continue;
        char names[WALK_NAMES][FILE_NAME_LEN];
        size_t n = list_variants(kfd, names, WALK_NAMES);
        for (size_t i = 0; i < n && is_going; i++)
            is_going = fn(d, xx, dir, kfd, names[i], arg);
        close(kfd);
    }
    closedir(xd);
    return is_going;
}

static void walk(struct wr_cache_disk *d, visit_fn fn, void *arg)
{
    for (unsigned xx = 0; xx < N_DIRS && walk_xx(d, xx, fn, arg); xx++)
        ;
}

/* The scan at open: counts a file (fs_mu held by scan_at_open). */
static bool visit_count(struct wr_cache_disk *d, unsigned xx, const char *dir, int dfd,
                        const char *name, void *arg)
{
    (void)xx, (void)dir, (void)arg;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        atomic_fetch_add_explicit(&d->bytes, (int64_t)st.st_size, memory_order_relaxed);
        atomic_fetch_add_explicit(&d->files, 1, memory_order_relaxed);
    }
    return !atomic_load_explicit(&d->is_stop, memory_order_relaxed);
}

/* Files a crash left under tmp/ are half written: they go. */
static void clean_tmp(struct wr_cache_disk *d)
{
    int fd = openat(d->root_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *td = fd < 0 ? NULL : fdopendir(fd);
    if (!td) {
        if (fd >= 0)
            close(fd);
        return;
    }
    for (struct dirent *de; (de = readdir(td));) {
        if (strstr(de->d_name, ".tmp"))
            (void)unlinkat(d->tmp_fd, de->d_name, 0);
    }
    closedir(td);
}

/* Learns the files' total, one directory at a time under fs_mu (see the
 * invariants at the top). Stops early when the tier closes. */
static void scan_at_open(struct wr_cache_disk *d)
{
    clean_tmp(d);
    for (unsigned xx = 0; xx < N_DIRS; xx++) {
        pthread_mutex_lock(&d->fs_mu);
        bool is_going = walk_xx(d, xx, visit_count, NULL);
        d->scan_pos = xx + 1;
        pthread_mutex_unlock(&d->fs_mu);
        if (!is_going)
            return;
    }
    atomic_store(&d->is_scanned, true);
}

/* ---- eviction: the least recently used files (by mtime) --------------------- */

struct cand {
    int64_t mtime_ns;
    unsigned xx;
    char dir[DIR_NAME_LEN];
    char name[FILE_NAME_LEN];
};

/* The EVICT_BATCH oldest files seen: a max-heap on mtime (the root is the
 * youngest kept, replaced by anything older). */
struct oldest {
    struct cand *heap;
    size_t n;
};

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void heap_down(struct cand *h, size_t n, size_t i)
{
    for (;;) {
        size_t big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && h[l].mtime_ns > h[big].mtime_ns)
            big = l;
        if (r < n && h[r].mtime_ns > h[big].mtime_ns)
            big = r;
        if (big == i)
            return;
        struct cand t = h[i];
        h[i] = h[big];
        h[big] = t;
        i = big;
    }
}

/* What a walk saw of dir/name (its mtime in st), for a later removal. */
static struct cand cand_of(unsigned xx, const char *dir, const char *name, const struct stat *st)
{
    struct cand c = {.mtime_ns = mtime_ns(st), .xx = xx};
    memcpy(c.dir, dir, DIR_NAME_LEN);
    memcpy(c.name, name, FILE_NAME_LEN);
    return c;
}

static bool visit_collect(struct wr_cache_disk *d, unsigned xx, const char *dir, int dfd,
                          const char *name, void *arg)
{
    struct oldest *o = arg;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return true;
    struct cand c = cand_of(xx, dir, name, &st);
    if (o->n < EVICT_BATCH) {
        size_t i = o->n++;
        o->heap[i] = c;
        while (i > 0 && o->heap[(i - 1) / 2].mtime_ns < o->heap[i].mtime_ns) {
            struct cand t = o->heap[i];
            o->heap[i] = o->heap[(i - 1) / 2];
            o->heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (c.mtime_ns < o->heap[0].mtime_ns) {
        o->heap[0] = c;
        heap_down(o->heap, o->n, 0);
    }
    return !atomic_load_explicit(&d->is_stop, memory_order_relaxed);
}

static int by_mtime(const void *a, const void *b)
{
    int64_t x = ((const struct cand *)a)->mtime_ns, y = ((const struct cand *)b)->mtime_ns;
    return (x > y) - (x < y);
}

/* Removes c unless a hit touched it (or a write replaced it) since the
 * walk saw it; counted in *counter. */
static bool remove_unchanged(struct wr_cache_disk *d, const struct cand *c,
                             _Atomic uint64_t *counter)
{
    char rel[REL_LEN];
    snprintf(rel, sizeof(rel), "%.19s/%.16s", c->dir, c->name);
    pthread_mutex_lock(&d->fs_mu);
    struct stat st;
    bool is_removed = fstatat(d->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                      mtime_ns(&st) == c->mtime_ns && unlinkat(d->root_fd, rel, 0) == 0;
    if (is_removed) {
        account(d, c->xx, -(int64_t)st.st_size, -1);
        atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    }
    (void)unlinkat(d->root_fd, c->dir, AT_REMOVEDIR); /* ENOTEMPTY: other variants */
    pthread_mutex_unlock(&d->fs_mu);
    return is_removed;
}

/* Over max_bytes: removes the oldest files until 90% of it (the slack
 * spreads the walks over a tenth of the budget's worth of writes). */
static void evict(struct wr_cache_disk *d)
{
    uint64_t max = d->opts.max_bytes, low = max - max / 10;
    if (max == 0 || (uint64_t)atomic_load(&d->bytes) <= max)
        return;
    struct oldest o = {.heap = malloc(EVICT_BATCH * sizeof(struct cand))};
    if (!o.heap)
        return;
    /* Each pass removes up to EVICT_BATCH files; a pass that removes
     * nothing (all touched meanwhile, or the counts ahead of the disk)
     * ends it until the next write. */
    for (bool is_progress = true; is_progress && (uint64_t)atomic_load(&d->bytes) > low;) {
        o.n = 0;
        walk(d, visit_collect, &o);
        qsort(o.heap, o.n, sizeof(*o.heap), by_mtime);
        is_progress = false;
        for (size_t i = 0; i < o.n && (uint64_t)atomic_load(&d->bytes) > low; i++)
            is_progress |= remove_unchanged(d, &o.heap[i], &d->evictions);
        if (atomic_load_explicit(&d->is_stop, memory_order_relaxed))
            break;
    }
    free(o.heap);
}

/* ---- inactive files ------------------------------------------------------------ */

/* Removes dir/name if nothing wrote or hit it for inactive: its mtime
 * (a write sets it, a hit touches it) is older than the walk's cutoff. */
static bool visit_inactive(struct wr_cache_disk *d, unsigned xx, const char *dir, int dfd,
                           const char *name, void *arg)
{
    const int64_t *cutoff_ns = arg;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        mtime_ns(&st) < *cutoff_ns) {
        struct cand c = cand_of(xx, dir, name, &st);
        remove_unchanged(d, &c, &d->expired);
    }
    return !atomic_load_explicit(&d->is_stop, memory_order_relaxed);
}

static void add_ms(struct timespec *t, uint64_t ms)
{
    t->tv_sec += (time_t)(ms / 1000);
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static bool is_due(const struct timespec *now, const struct timespec *at)
{
    return now->tv_sec > at->tv_sec || (now->tv_sec == at->tv_sec && now->tv_nsec >= at->tv_nsec);
}

/* On the writer, when a sweep is due: removes the files not written or hit
 * for inactive (one walk of the tree), and plans the next sweep. */
static void sweep_if_due(struct wr_cache_disk *d)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (d->sweep_ms == 0 || !is_due(&now, &d->next_sweep))
        return;
    d->next_sweep = now;
    add_ms(&d->next_sweep, d->sweep_ms);
    if (!atomic_load(&d->is_scanned))
        return; /* the counts are not known yet: next time */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t cutoff_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec -
                        (int64_t)d->opts.inactive_ms * 1000000;
    walk(d, visit_inactive, &cutoff_ns);
}

/* ---- removal ------------------------------------------------------------------ */

/* Opens dir/name and reads its header into hit (key checked when want). */
static enum verdict read_file(const struct wr_cache_disk *d, int dfd, const char *name,
                              const struct wr_str *want, struct wr_cache_disk_hit *hit)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return FILE_UNREADABLE;
    struct stat st;
    enum verdict v = read_header(d, fd, want, hit, &st);
    close(fd);
    return v;
}

size_t wr_cache_disk_remove_key(struct wr_cache_disk *d, struct wr_str key)
{
    char dir[DIR_NAME_LEN];
    unsigned xx = dir_name(d, key, dir);
    int dfd = openat(d->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0)
        return 0;
    char names[WALK_NAMES][FILE_NAME_LEN];
    size_t n = list_variants(dfd, names, WALK_NAMES), removed = 0;
    struct wr_cache_disk_hit hit;
    wr_cache_disk_hit_init(&hit);
    for (size_t i = 0; i < n; i++) {
        enum verdict v = read_file(d, dfd, names[i], &key, &hit);
        if (v == FILE_OK)
            removed += remove_file(d, xx, dir, names[i], NULL);
        else if (v == FILE_CORRUPT)
            remove_file(d, xx, dir, names[i], &d->corrupt);
    }
    wr_cache_disk_hit_fini(&hit);
    close(dfd);
    remove_dir_if_empty(d, dir);
    return removed;
}

struct prefix_walk {
    struct wr_str prefix;
    struct wr_cache_disk_hit hit;
    size_t removed;
};

static bool visit_prefix(struct wr_cache_disk *d, unsigned xx, const char *dir, int dfd,
                         const char *name, void *arg)
{
    struct prefix_walk *w = arg;
    enum verdict v = read_file(d, dfd, name, NULL, &w->hit);
    if (v == FILE_OK && wr_str_has_prefix(w->hit.key, w->prefix)) {
        w->removed += remove_file(d, xx, dir, name, NULL);
        remove_dir_if_empty(d, dir);
    } else if (v == FILE_CORRUPT) {
        remove_file(d, xx, dir, name, &d->corrupt);
    }
    return true;
}

size_t wr_cache_disk_remove_prefix(struct wr_cache_disk *d, struct wr_str prefix)
{
    struct prefix_walk w = {.prefix = prefix};
    wr_cache_disk_hit_init(&w.hit);
    walk(d, visit_prefix, &w);
    wr_cache_disk_hit_fini(&w.hit);
    return w.removed;
}

/* ---- the writer ------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes e's header, blobs and body to fd. */
static int write_file(struct wr_cache_disk *d, int fd, struct wr_cache_entry *e)
{
    const struct wr_str parts[4] = {wr_cache_entry_key(e), wr_cache_entry_secondary(e),
                                    wr_cache_entry_head(e), wr_cache_entry_meta(e)};
    const struct wr_cache_body *b = wr_cache_entry_body(e);
    struct file_header h = {.version = WR_CACHE_DISK_VERSION};
    memcpy(h.magic, MAGIC, 4);
    h.meta_version = d->opts.meta_version;
    h.key_len = (uint32_t)parts[0].len;
    h.sec_len = (uint32_t)parts[1].len;
    h.head_len = (uint32_t)parts[2].len;
    h.meta_len = (uint32_t)parts[3].len;
    h.body_len = wr_cache_body_len(b);
    h.stored_ms = wr_cache_entry_stored_ms(e);
    struct sip s;
    sip_init(&s, d);
    sip_update(&s, &h, offsetof(struct file_header, check));
    for (size_t i = 0; i < 4; i++)
        sip_update(&s, parts[i].ptr, parts[i].len);
    h.check = sip_final(&s);
    if (write_all(fd, &h, sizeof(h)) < 0)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (parts[i].len && write_all(fd, parts[i].ptr, parts[i].len) < 0)
            return -1;
    }
    struct wr_cache_cursor c = {0};
    uint64_t written = 0;
    for (struct wr_str out; wr_cache_body_read(b, &c, &out), out.len > 0; written += out.len) {
        if (write_all(fd, out.ptr, out.len) < 0)
            return -1;
    }
    return written == h.body_len ? 0 : -1;
}

/* Over WR_CACHE_DISK_MAX_VARIANTS files in dir: the oldest go, except
 * keep (the one just written). */
static void trim_variants(struct wr_cache_disk *d, unsigned xx, const char *dir, const char *keep)
{
    int dfd = openat(d->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0)
        return;
    char names[WALK_NAMES][FILE_NAME_LEN];
    size_t n = list_variants(dfd, names, WALK_NAMES);
    while (n > WR_CACHE_DISK_MAX_VARIANTS) {
        size_t old = n;
        int64_t old_ns = INT64_MAX;
        for (size_t i = 0; i < n; i++) {
            struct stat st;
            if (strcmp(names[i], keep) != 0 &&
                fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && mtime_ns(&st) < old_ns) {
                old = i;
                old_ns = mtime_ns(&st);
            }
        }
        if (old == n)
            break;
        remove_file(d, xx, dir, names[old], &d->evictions);
        memcpy(names[old], names[--n], FILE_NAME_LEN);
    }
    close(dfd);
}

/* Renames tmp/tmp_name to e's name, counting the change. */
static int install(struct wr_cache_disk *d, struct wr_cache_entry *e, const char *tmp_name)
{
    char dir[DIR_NAME_LEN], name[FILE_NAME_LEN], rel[REL_LEN];
    unsigned xx = dir_name(d, wr_cache_entry_key(e), dir);
    file_name(d, wr_cache_entry_key(e), wr_cache_entry_secondary(e), name);
    snprintf(rel, sizeof(rel), "%.19s/%.16s", dir, name);
    char xname[3] = {dir[0], dir[1], 0};
    pthread_mutex_lock(&d->fs_mu);
    /* Under fs_mu: a remove_key's rmdir cannot come between the mkdir
     * and the rename. */
    (void)mkdirat(d->root_fd, xname, 0700);
    (void)mkdirat(d->root_fd, dir, 0700);
    struct stat old, st;
    bool had = fstatat(d->root_fd, rel, &old, AT_SYMLINK_NOFOLLOW) == 0;
    int rc = fstatat(d->tmp_fd, tmp_name, &st, 0);
    if (rc == 0)
        rc = renameat(d->tmp_fd, tmp_name, d->root_fd, rel);
    if (rc == 0)
        account(d, xx, (int64_t)st.st_size - (had ? (int64_t)old.st_size : 0), had ? 0 : 1);
    pthread_mutex_unlock(&d->fs_mu);
    if (rc == 0)
        trim_variants(d, xx, dir, name);
    return rc;
}

static void write_entry(struct wr_cache_disk *d, struct wr_cache_entry *e)
{
    char tmp_name[48];
    /* Unique to this process and tier, created exclusively: two tiers on
     * one path (a reload that changed the section) never share a file. */
    snprintf(tmp_name, sizeof(tmp_name), "%d-%llx-%llu.tmp", (int)getpid(),
             (unsigned long long)(uintptr_t)d, (unsigned long long)++d->tmp_seq);
    int fd = openat(d->tmp_fd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    0600);
    if (fd < 0) {
        atomic_fetch_add_explicit(&d->write_errors, 1, memory_order_relaxed);
        return;
    }
    int rc = write_file(d, fd, e);
    if (close(fd) < 0)
        rc = -1;
    if (rc == 0)
        rc = install(d, e, tmp_name);
    if (rc < 0) {
        (void)unlinkat(d->tmp_fd, tmp_name, 0);
        atomic_fetch_add_explicit(&d->write_errors, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&d->writes, 1, memory_order_relaxed);
}

/* The next queued entry (mu held), waiting for one; NULL when stopping.
 * Tells flush when there is nothing to do. */
static struct wr_cache_entry *next_entry(struct wr_cache_disk *d)
{
    while (d->n == 0 && !d->is_stopping) {
        d->is_busy = false;
        pthread_cond_broadcast(&d->cv_idle);
        if (d->sweep_ms == 0) {
            pthread_cond_wait(&d->cv_work, &d->mu);
            continue;
        }
        if (pthread_cond_timedwait(&d->cv_work, &d->mu, &d->next_sweep) == ETIMEDOUT) {
            d->is_busy = true; /* flush waits for the sweep too */
            pthread_mutex_unlock(&d->mu);
            sweep_if_due(d);
            pthread_mutex_lock(&d->mu);
        }
    }
    if (d->is_stopping)
        return NULL;
    struct wr_cache_entry *e = d->queue[d->head];
    d->head = (d->head + 1) % d->opts.queue_cap;
    d->n--;
    d->is_busy = true;
    return e;
}

static void *writer_main(void *arg)
{
    struct wr_cache_disk *d = arg;
    scan_at_open(d);
    pthread_mutex_lock(&d->mu);
    for (struct wr_cache_entry *e; (e = next_entry(d));) {
        pthread_mutex_unlock(&d->mu);
        write_entry(d, e);
        wr_cache_entry_unref(e);
        if (atomic_load(&d->is_scanned))
            evict(d);
        sweep_if_due(d); /* under a stream of writes the wait never times out */
        pthread_mutex_lock(&d->mu);
    }
    /* Stopping: what is still queued is dropped (cache_disk.h). */
    for (; d->n > 0; d->n--, d->head = (d->head + 1) % d->opts.queue_cap) {
        wr_cache_entry_unref(d->queue[d->head]);
        atomic_fetch_add_explicit(&d->dropped, 1, memory_order_relaxed);
    }
    d->is_busy = false;
    pthread_cond_broadcast(&d->cv_idle);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

bool wr_cache_disk_put(struct wr_cache_disk *d, struct wr_cache_entry *e)
{
    struct wr_cache_cursor probe = {0};
    struct wr_str first;
    if (wr_cache_body_read(wr_cache_entry_body(e), &probe, &first) != WR_CACHE_BODY_COMPLETE)
        return false;
    uint64_t blobs = (uint64_t)wr_cache_entry_key(e).len + wr_cache_entry_secondary(e).len +
                     wr_cache_entry_head(e).len + wr_cache_entry_meta(e).len;
    if (HEADER_SIZE + blobs > WR_CACHE_DISK_HEADER_MAX)
        return false;
    pthread_mutex_lock(&d->mu);
    bool is_queued = !d->is_stopping && d->n < d->opts.queue_cap;
    if (is_queued) {
        wr_cache_entry_ref(e);
        d->queue[(d->head + d->n) % d->opts.queue_cap] = e;
        d->n++;
        pthread_cond_signal(&d->cv_work);
    }
    pthread_mutex_unlock(&d->mu);
    if (!is_queued)
        atomic_fetch_add_explicit(&d->dropped, 1, memory_order_relaxed);
    return is_queued;
}

void wr_cache_disk_flush(struct wr_cache_disk *d)
{
    pthread_mutex_lock(&d->mu);
    while ((d->n > 0 || d->is_busy) && !d->is_stopping)
        pthread_cond_wait(&d->cv_idle, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

void wr_cache_disk_stats(struct wr_cache_disk *d, struct wr_cache_disk_stats *out)
{
    int64_t bytes = atomic_load_explicit(&d->bytes, memory_order_relaxed);
    int64_t files = atomic_load_explicit(&d->files, memory_order_relaxed);
    *out = (struct wr_cache_disk_stats){
        .bytes = bytes > 0 ? (uint64_t)bytes : 0,
        .files = files > 0 ? (uint64_t)files : 0,
        .writes = atomic_load_explicit(&d->writes, memory_order_relaxed),
        .dropped_puts = atomic_load_explicit(&d->dropped, memory_order_relaxed),
        .evictions = atomic_load_explicit(&d->evictions, memory_order_relaxed),
        .corrupt = atomic_load_explicit(&d->corrupt, memory_order_relaxed),
        .write_errors = atomic_load_explicit(&d->write_errors, memory_order_relaxed),
        .expired = atomic_load_explicit(&d->expired, memory_order_relaxed),
        .is_scanned = atomic_load(&d->is_scanned),
    };
}

/* ---- open and close ------------------------------------------------------------ */

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    return 0;
}

/* The seed: read, or made whole under tmp/ and linked into place (link
 * fails when another open made it first: then that one is read). */
static int load_seed(struct wr_cache_disk *d)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        uint64_t k[2];
        int fd = openat(d->root_fd, "seed", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            ssize_t n = pread(fd, k, sizeof(k), 0);
            close(fd);
            if (n != (ssize_t)sizeof(k)) {
                errno = EINVAL; /* not ours, or damaged: the operator decides */
                return -1;
            }
            d->k0 = k[0];
            d->k1 = k[1];
            return 0;
        }
        if (errno != ENOENT || getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
            return -1;
        char name[48];
        snprintf(name, sizeof(name), "seed.%d.tmp", (int)getpid());
        fd = openat(d->tmp_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        int rc = write_all(fd, k, sizeof(k));
        close(fd);
        if (rc == 0 && linkat(d->tmp_fd, name, d->root_fd, "seed", 0) < 0 && errno != EEXIST)
            rc = -1;
        (void)unlinkat(d->tmp_fd, name, 0);
        if (rc < 0)
            return -1;
    }
    errno = EAGAIN;
    return -1;
}

/* The directories and the seed; -1 with errno and *what naming the step. */
static int open_tree(struct wr_cache_disk *d, const char *path, const char **what)
{
    *what = "cannot create it";
    if (make_dirs(path) < 0)
        return -1;
    *what = "cannot open it as a directory";
    d->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->root_fd < 0)
        return -1;
    *what = "cannot create tmp/ in it";
    if (mkdirat(d->root_fd, "tmp", 0700) < 0 && errno != EEXIST)
        return -1;
    d->tmp_fd = openat(d->root_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (d->tmp_fd < 0)
        return -1;
    *what = "not writable";
    if (faccessat(d->tmp_fd, ".", W_OK | X_OK, AT_EACCESS) < 0 ||
        faccessat(d->root_fd, ".", W_OK | X_OK, AT_EACCESS) < 0)
        return -1;
    *what = "its seed file cannot be read or made (a file \"seed\" of 16 bytes)";
    return load_seed(d);
}

static void free_disk(struct wr_cache_disk *d)
{
    if (d->root_fd >= 0)
        close(d->root_fd);
    if (d->tmp_fd >= 0)
        close(d->tmp_fd);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->fs_mu);
    pthread_cond_destroy(&d->cv_work);
    pthread_cond_destroy(&d->cv_idle);
    free(d->queue);
    free(d);
}

struct wr_cache_disk *wr_cache_disk_open(const char *path, const struct wr_cache_disk_opts *opts,
                                         char *err, size_t err_cap)
{
    struct wr_cache_disk *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    d->root_fd = d->tmp_fd = -1;
    d->opts = *opts;
    if (d->opts.queue_cap == 0)
        d->opts.queue_cap = DEFAULT_QUEUE;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->fs_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the sweeps' timed wait */
    pthread_cond_init(&d->cv_work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&d->cv_idle, NULL);
    uint64_t quarter_s = d->opts.inactive_ms / 4000;
    d->touch_after_s = d->opts.inactive_ms == 0 || quarter_s >= TOUCH_AFTER_SEC
                           ? TOUCH_AFTER_SEC : (quarter_s > 0 ? (int64_t)quarter_s : 1);
    if (d->opts.inactive_ms > 0) {
        uint64_t q = d->opts.sweep_ms ? d->opts.sweep_ms : d->opts.inactive_ms / 4;
        d->sweep_ms = d->opts.sweep_ms ? q
                      : q < SWEEP_MIN_MS ? SWEEP_MIN_MS : q > SWEEP_MAX_MS ? SWEEP_MAX_MS : q;
        clock_gettime(CLOCK_MONOTONIC, &d->next_sweep);
        add_ms(&d->next_sweep, d->sweep_ms);
    }
    d->is_busy = true; /* the scan at open, until the writer waits */
    const char *what = "out of memory";
    d->queue = calloc(d->opts.queue_cap, sizeof(*d->queue));
    if (!d->queue || open_tree(d, path, &what) < 0) {
        snprintf(err, err_cap, "%s: %s (%s)", path, what, strerror(errno));
        free_disk(d);
        return NULL;
    }
    int rc = pthread_create(&d->thread, NULL, writer_main, d);
    if (rc != 0) {
        snprintf(err, err_cap, "%s: cannot start the writer thread (%s)", path, strerror(rc));
        free_disk(d);
        return NULL;
    }
    return d;
}

void wr_cache_disk_close(struct wr_cache_disk *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->is_stopping = true;
    atomic_store(&d->is_stop, true);
    pthread_cond_broadcast(&d->cv_work);
    pthread_cond_broadcast(&d->cv_idle);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    free_disk(d);
}
