/*
 * static_cache: per-worker open-file cache (see static_cache.h for the
 * ownership rules).
 *
 * A chained hash table over a power-of-two bucket array, plus a doubly
 * linked LRU list (head = most recently used). Roots get their own small
 * table of O_PATH descriptors, revalidated like files. Time is clock.h's
 * wr_clock_now_ms (vDSO, no system call; tests fake it there).
 */
#include "weir/static_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "weir/clock.h"

#define N_ROOTS 16

struct root_entry {
  char *path; /* owned; NULL when the slot is free */
  int fd;     /* O_PATH | O_DIRECTORY */
  dev_t dev;
  ino_t ino;
  uint64_t checked_ms;
};

struct wr_static_cache {
  size_t max_entries, n_entries;
  size_t n_buckets;                /* power of two */
  struct wr_static_file **buckets; /* owned array; entries owned via refs */
  struct wr_static_file *lru_head, *lru_tail;
  struct root_entry roots[N_ROOTS];
  unsigned next_root; /* round-robin victim when roots are full */
  struct wr_log_budget log_budget; /* static.c's error lines, this worker's */
  struct wr_static_cache_stats stats;
  uint64_t coded_bytes; /* compressed copies held by cached entries */
};

struct wr_static_cache *wr_static_cache_new(size_t max_entries) {
  struct wr_static_cache *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->max_entries = max_entries ? max_entries : 1;
  c->n_buckets = 16;
  while (c->n_buckets < 2 * c->max_entries)
    c->n_buckets *= 2;
  c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
  if (!c->buckets) {
    free(c);
    return NULL;
  }
  return c;
}

void wr_static_file_unref(struct wr_static_file *f) {
  if (!f || --f->refs > 0)
    return;
  close(f->fd);
  free(f->data);
  for (int i = 0; i < 4; i++)
    free(f->coded[i]);
  free(f);
}

static void lru_unlink(struct wr_static_cache *c, struct wr_static_file *f) {
  if (f->lru_prev)
    f->lru_prev->lru_next = f->lru_next;
  else
    c->lru_head = f->lru_next;
  if (f->lru_next)
    f->lru_next->lru_prev = f->lru_prev;
  else
    c->lru_tail = f->lru_prev;
  f->lru_prev = f->lru_next = NULL;
}

static void lru_push_front(struct wr_static_cache *c,
                           struct wr_static_file *f) {
  f->lru_prev = NULL;
  f->lru_next = c->lru_head;
  if (c->lru_head)
    c->lru_head->lru_prev = f;
  c->lru_head = f;
  if (!c->lru_tail)
    c->lru_tail = f;
}

/* Takes f out of the table and drops the table's reference. */
static void evict(struct wr_static_cache *c, struct wr_static_file *f) {
  struct wr_static_file **pp = &c->buckets[f->hash & (c->n_buckets - 1)];
  while (*pp != f)
    pp = &(*pp)->hnext;
  *pp = f->hnext;
  f->hnext = NULL;
  lru_unlink(c, f);
  f->is_cached = false;
  c->n_entries--;
  for (int i = 0; i < 4; i++)
    c->coded_bytes -= f->coded_len[i];
  wr_static_file_unref(f);
}

void wr_static_cache_free(struct wr_static_cache *cache) {
  if (!cache)
    return;
  while (cache->lru_head)
    evict(cache, cache->lru_head);
  for (size_t i = 0; i < N_ROOTS; i++) {
    if (cache->roots[i].path) {
      close(cache->roots[i].fd);
      free(cache->roots[i].path);
    }
  }
  free(cache->buckets);
  free(cache);
}

struct wr_log_budget *wr_static_cache_log_budget(struct wr_static_cache *cache) {
  return &cache->log_budget;
}

struct wr_static_cache_stats
wr_static_cache_stats(const struct wr_static_cache *cache) {
  return cache->stats;
}

/* ---- roots ------------------------------------------------------------- */

static int open_root(const char *root, struct stat *st) {
  int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 && fstat(fd, st) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/* The O_PATH descriptor of root (borrowed from the cache), or -1. */
static int root_fd(struct wr_static_cache *c, const char *root, uint64_t now) {
  struct root_entry *slot = NULL;
  for (size_t i = 0; i < N_ROOTS && !slot; i++) {
    if (c->roots[i].path && strcmp(c->roots[i].path, root) == 0)
      slot = &c->roots[i];
  }
  if (slot && now - slot->checked_ms < WR_STATIC_CACHE_CHECK_MS)
    return slot->fd;
  struct stat st;
  if (slot && stat(root, &st) == 0 && st.st_dev == slot->dev &&
      st.st_ino == slot->ino) {
    slot->checked_ms = now;
    return slot->fd;
  }
  int fd = open_root(root, &st);
  if (fd < 0)
    return -1;
  char *copy = slot ? slot->path : strdup(root);
  if (!copy) {
    close(fd);
    errno = ENOMEM;
    return -1;
  }
  if (!slot) {
    slot = &c->roots[c->next_root++ % N_ROOTS];
    if (slot->path) {
      close(slot->fd);
      free(slot->path);
    }
  } else {
    close(slot->fd);
  }
  *slot = (struct root_entry){.path = copy,
                              .fd = fd,
                              .dev = st.st_dev,
                              .ino = st.st_ino,
                              .checked_ms = now};
  return fd;
}

/* ---- files ------------------------------------------------------------- */

static int open_beneath(int dir_fd, const char *rel, bool follow_symlinks) {
  /* RESOLVE_BENEATH: every component, symlink targets included, must stay
   * under dir_fd; the kernel checks it during the walk, so there is no
   * window between a check and the open. follow_symlinks = on is the
   * operator allowing links out of root. */
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
                         .resolve = RESOLVE_NO_MAGICLINKS};
  if (!follow_symlinks)
    how.resolve |= RESOLVE_BENEATH;
  int fd = (int)syscall(SYS_openat2, dir_fd, rel, &how, sizeof(how));
  if (fd >= 0 || errno != EACCES)
    return fd;
  /* A directory weir may search but not read (0711, as a home directory
   * holding a public site often is): its index file is still served, as
   * nginx does; only a listing needs read permission, and autoindex asks
   * for it itself. So a directory is kept as an O_PATH descriptor; a file
   * weir may not read stays EACCES. */
  how.flags = O_PATH | O_CLOEXEC;
  fd = (int)syscall(SYS_openat2, dir_fd, rel, &how, sizeof(how));
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
    return fd;
  if (fd >= 0)
    close(fd);
  errno = EACCES;
  return -1;
}

/* The key: one byte for follow_symlinks, root, NUL, rel. */
static size_t key_len(const char *root, const char *rel) {
  return 1 + strlen(root) + 1 + strlen(rel);
}

static void write_key(char *out, const char *root, const char *rel,
                      bool follow_symlinks) {
  size_t n = strlen(root);
  out[0] = follow_symlinks ? 'f' : 'b';
  memcpy(out + 1, root, n + 1);
  memcpy(out + 2 + n, rel, strlen(rel));
}

static uint32_t hash_key(const char *root, const char *rel,
                         bool follow_symlinks) {
  uint32_t h = 2166136261u; /* FNV-1a */
  h = (h ^ (follow_symlinks ? 'f' : 'b')) * 16777619u;
  for (const char *p = root; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  h = (h ^ 0) * 16777619u;
  for (const char *p = rel; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return h;
}

static bool key_is(const struct wr_static_file *f, const char *root,
                   const char *rel, bool follow_symlinks) {
  size_t n = strlen(root), m = strlen(rel);
  return f->key_len == 2 + n + m &&
         f->key[0] == (follow_symlinks ? 'f' : 'b') &&
         memcmp(f->key + 1, root, n + 1) == 0 &&
         memcmp(f->key + 2 + n, rel, m) == 0;
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size && a->st_mode == b->st_mode &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

void wr_static_file_format_validators(struct wr_static_file *f) {
  const struct stat *st = &f->st;
  uint64_t mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u +
                      (uint64_t)st->st_mtim.tv_nsec;
  int n = snprintf(f->etag, sizeof(f->etag), "\"%llx-%llx-%llx\"",
                   (unsigned long long)st->st_size, (unsigned long long)mtime_ns,
                   (unsigned long long)st->st_ino);
  f->etag_len = (unsigned char)n;
  struct tm tm;
  gmtime_r(&st->st_mtime, &tm);
  f->last_modified_len = (unsigned char)strftime(
      f->last_modified, sizeof(f->last_modified), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The content of a small regular file, read whole at open; NULL when the
 * file is large, empty, or changed size while read (then it is sent from
 * its descriptor, which is always correct). */
static char *read_small(int fd, const struct stat *st) {
  if (!S_ISREG(st->st_mode) || st->st_size <= 0 ||
      st->st_size > WR_STATIC_CACHE_INLINE_MAX)
    return NULL;
  size_t size = (size_t)st->st_size;
  char *data = malloc(size + 1);
  if (!data)
    return NULL;
  ssize_t n = pread(fd, data, size + 1, 0);
  if (n != (ssize_t)size) {
    free(data);
    return NULL;
  }
  return data;
}

/* A new, uncached file with one reference (the caller's), or NULL + errno. */
static struct wr_static_file *open_file(int dir_fd, const char *root,
                                        const char *rel, bool follow_symlinks) {
  size_t klen = key_len(root, rel);
  struct wr_static_file *f = malloc(sizeof(*f) + klen);
  if (!f) {
    errno = ENOMEM;
    return NULL;
  }
  f->fd = open_beneath(dir_fd, rel, follow_symlinks);
  if (f->fd < 0 || fstat(f->fd, &f->st) < 0) {
    int err = errno;
    if (f->fd >= 0)
      close(f->fd);
    free(f);
    errno = err;
    return NULL;
  }
  f->data = read_small(f->fd, &f->st);
  wr_static_file_format_validators(f);
  f->refs = 1;
  f->absent_variants = 0;
  memset(f->coded, 0, sizeof(f->coded));
  memset(f->coded_len, 0, sizeof(f->coded_len));
  f->type = (struct wr_str){NULL, 0};
  f->hnext = f->lru_prev = f->lru_next = NULL;
  f->is_cached = false;
  f->key_len = klen;
  write_key(f->key, root, rel, follow_symlinks);
  return f;
}

static void insert(struct wr_static_cache *c, struct wr_static_file *f,
                   uint32_t hash, uint64_t now) {
  if (c->n_entries >= c->max_entries)
    evict(c, c->lru_tail);
  f->hash = hash;
  f->checked_ms = now;
  f->is_cached = true;
  f->refs++; /* the table's */
  struct wr_static_file **b = &c->buckets[hash & (c->n_buckets - 1)];
  f->hnext = *b;
  *b = f;
  lru_push_front(c, f);
  c->n_entries++;
}

/* The cached entry for the key, revalidated when due; NULL when absent or
 * stale (a stale entry is evicted). */
static struct wr_static_file *find_valid(struct wr_static_cache *c, int dir_fd,
                                         const char *root, const char *rel,
                                         bool follow_symlinks, uint32_t hash,
                                         uint64_t now) {
  struct wr_static_file *f = c->buckets[hash & (c->n_buckets - 1)];
  while (f && !(f->hash == hash && key_is(f, root, rel, follow_symlinks)))
    f = f->hnext;
  if (!f)
    return NULL;
  if (now - f->checked_ms >= WR_STATIC_CACHE_CHECK_MS) {
    /* The path may now name another file, or nothing: compare what it
     * resolves to with what we hold. Any difference (or error) means
     * reopen, and the reopen applies RESOLVE_BENEATH again. */
    struct stat st;
    if (fstatat(dir_fd, rel, &st, 0) < 0 || !same_file(&st, &f->st)) {
      evict(c, f);
      return NULL;
    }
    f->checked_ms = now;
    f->absent_variants = 0; /* siblings may have appeared: look again */
  }
  lru_unlink(c, f);
  lru_push_front(c, f);
  return f;
}

struct wr_static_file *wr_static_cache_open(struct wr_static_cache *cache,
                                            const char *root, const char *rel,
                                            bool follow_symlinks) {
  if (!cache) {
    struct stat st;
    int dir_fd = open_root(root, &st);
    if (dir_fd < 0)
      return NULL;
    struct wr_static_file *f = open_file(dir_fd, root, rel, follow_symlinks);
    int err = errno;
    close(dir_fd);
    errno = err;
    return f;
  }
  uint64_t now = wr_clock_now_ms();
  int dir_fd = root_fd(cache, root, now);
  if (dir_fd < 0)
    return NULL;
  uint32_t hash = hash_key(root, rel, follow_symlinks);
  struct wr_static_file *f =
      find_valid(cache, dir_fd, root, rel, follow_symlinks, hash, now);
  if (f) {
    f->refs++;
    return f;
  }
  cache->stats.n_opens++;
  f = open_file(dir_fd, root, rel, follow_symlinks);
  if (f)
    insert(cache, f, hash, now);
  return f;
}

struct wr_static_file *wr_static_cache_open_variant(struct wr_static_cache *cache,
                                                    struct wr_static_file *base,
                                                    const char *root, const char *name,
                                                    bool follow_symlinks,
                                                    enum wr_static_variant variant) {
  unsigned char bit = (unsigned char)(1u << variant);
  if (base->absent_variants & bit)
    return NULL;
  struct wr_static_file *f =
      wr_static_cache_open(cache, root, name, follow_symlinks);
  if (f && S_ISREG(f->st.st_mode))
    return f;
  wr_static_file_unref(f);
  /* Any failure counts as absent (ENOENT mostly; EACCES or a directory
   * named FILE.gz cannot be served either): base is revalidated within
   * WR_STATIC_CACHE_CHECK_MS, which clears the bit and looks again. */
  base->absent_variants |= bit;
  return NULL;
}

bool wr_static_cache_keep_coded(struct wr_static_cache *cache, struct wr_static_file *f, int c,
                                char *data, size_t len, uint64_t budget) {
  if (!cache || !f->is_cached || c <= 0 || c >= 4 || f->coded[c] ||
      cache->coded_bytes + len > budget)
    return false;
  f->coded[c] = data;
  f->coded_len[c] = len;
  cache->coded_bytes += len;
  return true;
}

uint64_t wr_static_cache_coded_bytes(const struct wr_static_cache *cache) {
  return cache->coded_bytes;
}

struct wr_str wr_static_file_rel(const struct wr_static_file *f) {
  /* The key is flag byte, root, NUL, rel (write_key). */
  size_t root_len = strlen(f->key + 1);
  return (struct wr_str){f->key + 2 + root_len, f->key_len - 2 - root_len};
}
