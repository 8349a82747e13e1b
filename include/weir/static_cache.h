/*
 * static_cache: a worker's open-file cache for the static action.
 *
 * Keeps, per (root, relative path, follow_symlinks), an open descriptor and
 * its struct stat, plus one O_PATH descriptor per root, so a hot file costs
 * no open or stat per request. Entries are revalidated at most once a second
 * (fstatat on the path, compared by device, inode, size, mtime and mode):
 * a changed file is reopened, a deleted one dropped, so changes show within
 * about a second. Bounded: at most max_entries files, least recently used
 * evicted first. Misses are not cached (a new file is served at once), with
 * one exception: a file's entry remembers which precompressed siblings
 * (FILE.br, FILE.gz) it lacks, until the entry is next revalidated, so that
 * `precompressed = on` costs no failing open per request for the usual file
 * without siblings, and a sibling created later is served within a second.
 *
 * Ownership: a struct wr_static_file is reference-counted. The table holds
 * one reference while the entry is cached; wr_static_cache_open gives the
 * caller another. A response that sends the file keeps that reference until
 * the body is sent or dropped (conn calls wr_static_file_unref instead of
 * close), so an eviction or a reopen never closes a descriptor in use: the
 * descriptor is closed by the last unref. sendfile is given an explicit
 * offset, so sharing one descriptor between responses is safe.
 *
 * Layer 3, worker thread only (no locking: each worker has its own cache).
 */
#ifndef WEIR_STATIC_CACHE_H
#define WEIR_STATIC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "weir/log.h"
#include "weir/str.h"

/* Revalidation interval of cached entries. */
#define WR_STATIC_CACHE_CHECK_MS 1000

/* Files up to this size also keep their bytes in the entry, so a hot small
 * file goes out in the same writev as its head: one syscall per response.
 * Bound: max_entries * this per worker (16 MiB with the defaults). */
#define WR_STATIC_CACHE_INLINE_MAX (16 * 1024)

struct wr_static_cache;

struct wr_static_file {
  int fd;         /* owned: O_RDONLY, closed by the last unref */
  struct stat st; /* as of the last (re)validation */
  char *data;     /* owned: the whole content when it is at most
                     WR_STATIC_CACHE_INLINE_MAX bytes and was read whole at
                     open; else NULL (the body is sent from fd) */
  unsigned refs;  /* table's reference (while cached) + callers' */
  /* Formatted once from st when the file is opened (st never changes for an
   * entry: a changed file is a new entry), so no response formats them. */
  char etag[64];          /* "\"size-mtime_ns-inode\"" in hex, quotes included */
  unsigned char etag_len;
  char last_modified[32]; /* IMF-fixdate of st_mtime */
  unsigned char last_modified_len;
  /* Compressed copies, by enum wr_coding (0 unused): made once by static.c
   * and kept with the entry (wr_static_cache_keep_coded), so a hot file is
   * compressed once, not per request. Freed with the entry. */
  char *coded[4];
  size_t coded_len[4];
  /* Content-Type of the entry's name, set by static.c at its first answer
   * (the MIME table is static.c's); {NULL, 0} until then. Points into
   * static storage. */
  struct wr_str type;
  /* private to static_cache.c */
  unsigned char absent_variants; /* 1u << enum wr_static_variant: siblings
                                    that could not be opened since the last
                                    revalidation (cleared by it) */
  struct wr_static_file *hnext, *lru_prev, *lru_next;
  bool is_cached;
  uint64_t checked_ms;
  uint32_t hash;
  size_t key_len;
  char key[];
};

/* Formats f->etag and f->last_modified from f->st (RFC 9110 §8.8.3: a
 * strong validator from size, mtime in nanoseconds and inode). */
void wr_static_file_format_validators(struct wr_static_file *f);

/* A cache of at most max_entries files; NULL on allocation failure. */
struct wr_static_cache *wr_static_cache_new(size_t max_entries);

/* Closes every cached descriptor. Responses must have released theirs. */
void wr_static_cache_free(struct wr_static_cache *cache);

/*
 * Opens root/rel (rel relative, no leading '/'; "." for root itself) with
 * openat2: RESOLVE_BENEATH unless follow_symlinks, never magic links; from
 * the cache when a valid entry exists. Returns a referenced file (release
 * with wr_static_file_unref) or NULL with errno (ENOENT, EACCES, EXDEV when
 * the path would leave root, ...). cache may be NULL: nothing is cached.
 */
struct wr_static_file *wr_static_cache_open(struct wr_static_cache *cache,
                                            const char *root, const char *rel,
                                            bool follow_symlinks);

/* The worker's budget of static error-log lines (a 403 for a file weir may
 * not read: any client can repeat the request at will). Borrowed; lives as
 * long as cache. */
struct wr_log_budget *wr_static_cache_log_budget(struct wr_static_cache *cache);

/* Precompressed siblings of a file: FILE.br and FILE.gz. */
enum wr_static_variant { WR_STATIC_VARIANT_BR = 0, WR_STATIC_VARIANT_GZ };

/*
 * Opens name, the sibling `variant` of base (base: the referenced file for
 * the same root without the suffix; name: its rel plus ".br" or ".gz"), as
 * wr_static_cache_open does, and returns it only when it is a regular file.
 * Otherwise returns NULL and remembers the absence in base until base is
 * revalidated (at most WR_STATIC_CACHE_CHECK_MS): meanwhile the same call
 * returns NULL without a system call.
 */
struct wr_static_file *wr_static_cache_open_variant(struct wr_static_cache *cache,
                                                    struct wr_static_file *base,
                                                    const char *root, const char *name,
                                                    bool follow_symlinks,
                                                    enum wr_static_variant variant);

/*
 * Keeps data (malloc'ed, len bytes) as f's copy compressed with coding c
 * (1..3) when f is cached and the cache's copies stay within budget bytes
 * (copies of evicted entries stop counting when they leave the table).
 * Returns true when kept (f owns data now), false (the caller still owns
 * data) otherwise.
 */
bool wr_static_cache_keep_coded(struct wr_static_cache *cache, struct wr_static_file *f, int c,
                                char *data, size_t len, uint64_t budget);

/* Bytes of compressed copies the cache's entries hold. */
uint64_t wr_static_cache_coded_bytes(const struct wr_static_cache *cache);

/* What a cache did, for tests and measurements. */
struct wr_static_cache_stats {
  uint64_t n_opens; /* files opened (openat2), failed opens included */
};

/* The counters of cache since it was made. */
struct wr_static_cache_stats wr_static_cache_stats(const struct wr_static_cache *cache);

/* The path f was opened by, relative to its root ("." for the root
 * itself): a precompressed variant's name ends in ".br" or ".gz". Borrowed
 * from f, not NUL-terminated. For `weir route`, which names the file a
 * request would be answered with. */
struct wr_str wr_static_file_rel(const struct wr_static_file *f);

/* Drops one reference; the last closes the descriptor and frees f. */
void wr_static_file_unref(struct wr_static_file *f);

#endif
