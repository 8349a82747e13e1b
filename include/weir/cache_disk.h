/*
 * cache_disk: the optional disk tier of one [cache NAME] (its `path`). It
 * keeps COMPLETE entries of the memory store (cache_store.h) as files that
 * survive a restart, and finds them again lazily: nothing is read at open,
 * a lookup reads the few headers of its key's directory.
 *
 * Files (all under path):
 *   seed                 16 random bytes: the key of the file-name hash,
 *                        made at the first open (keys carry client input;
 *                        an unkeyed hash would let anyone pile variants
 *                        into one directory)
 *   tmp/                 files being written (removed at open: a crash
 *                        never leaves a half file under a real name)
 *   XX/<K>/<F>           one stored response: K = 16 hex digits of the
 *                        keyed hash of the primary key, XX its first two;
 *                        F = 16 hex digits of the keyed hash of key and
 *                        secondary key (one file per variant)
 * A file, in the host's byte order (a cache directory is not portable
 * across architectures: a foreign file fails its check and is removed):
 *   offset 0   "WRCD"          magic
 *          4   u32 version     WR_CACHE_DISK_VERSION (this file format)
 *          8   u32 meta_version the caller's (the layout of its meta blob):
 *                              a file of another meta version is removed
 *         12   u32 key_len, sec_len, head_len, meta_len
 *         28   u32 reserved (0)
 *         32   u64 body_len
 *         40   u64 stored_ms   wr_cache_entry_stored_ms of the entry
 *         48   u64 check       hash of bytes 0..47 and the four blobs
 *         56   key, secondary, head, meta (the blobs, back to back)
 *              then body_len bytes of body; the file ends there.
 * Key hashes collide: a lookup compares the stored key. A file whose
 * check, lengths or size are wrong is removed by whoever reads it.
 *
 * Budget: max_bytes of files (sizes as stat reports them). The writer
 * thread learns the current total by one scan after open (in the
 * background: lookups work meanwhile), then keeps it as it writes; over
 * max_bytes it removes the least recently used files down to 90% of it,
 * by mtime: a write sets it, and a hit touches it (futimens, at most once
 * a minute per file) so that eviction by mtime is LRU within a minute.
 * With inactive_ms, the writer also removes files older than that by
 * mtime, one walk of the tree every quarter of it (1 s..60 s); hits then
 * touch at most every quarter of inactive_ms, so a file in use stays.
 * Finding the oldest costs one walk of the tree per eviction pass (no
 * index in memory): a pass frees at least a tenth of the budget, so the
 * walks are amortised over that many bytes of writes.
 *
 * A file changed behind weir's back (truncated, deleted) leaves the
 * counts off by the difference until the next open's scan relearns them.
 *
 * Threads: put, get, remove_*, stats and flush may be called from any
 * thread at once. Writes happen on the tier's own thread only.
 *
 * Layer 2 (storage): files, pthreads, cache_store; no libevent, no config.
 */
#ifndef WEIR_CACHE_DISK_H
#define WEIR_CACHE_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/cache_store.h"
#include "weir/str.h"

#define WR_CACHE_DISK_VERSION 1
/* Bytes of a file's header and blobs (key, secondary, head, meta) at
 * most: larger entries are not written, and a lookup never reads more. */
#define WR_CACHE_DISK_HEADER_MAX (128u * 1024u)
/* Variants kept per primary key: a lookup reads at most this many
 * headers; the writer removes the oldest variant to make room. Vary on a
 * field with many values (User-Agent) must not make lookups walk
 * thousands of files. */
#define WR_CACHE_DISK_MAX_VARIANTS 16

struct wr_cache_disk;

struct wr_cache_disk_opts {
    uint64_t max_bytes;    /* the budget for the files (0: no limit) */
    size_t queue_cap;      /* entries waiting for the writer (0: 64) */
    uint32_t meta_version; /* stored in every file; files with another are
                              removed when read (the meta blob's layout
                              changed) */
    uint64_t inactive_ms;  /* files neither written nor hit for this long
                              are removed by the writer (0: never) */
    /* Tests only (0 in production): how often the writer looks for
     * inactive files; by default a quarter of inactive_ms, 1 s..60 s. */
    uint64_t sweep_ms;
    /* Tests only (NULL in production): replaces the keyed hash naming a
     * primary key's directory, to force two keys into one directory. */
    uint64_t (*dir_hash)(struct wr_str key);
};

/*
 * Opens (creates, 0700, when missing: parents too) the directory path and
 * starts the writer thread. Reads nothing but the seed. Returns NULL with
 * a message in err (err_cap bytes, NUL-terminated) when the path is
 * unusable (not a directory, no permission, no seed can be made) or the
 * thread cannot start: the caller reports it at start. Main's thread.
 */
struct wr_cache_disk *wr_cache_disk_open(const char *path, const struct wr_cache_disk_opts *opts,
                                         char *err, size_t err_cap);

/*
 * Stops the writer and frees d. The entry being written is finished;
 * entries still queued are dropped (counted in dropped_puts): a stop does
 * not wait for up to queue_cap objects to be written; call
 * wr_cache_disk_flush first to keep them. No other thread may still use
 * d. Must run before the store whose entries were put is freed. NULL ok.
 */
void wr_cache_disk_close(struct wr_cache_disk *d);

/*
 * Queues e (its body COMPLETE) to be written; takes one reference on e,
 * which the writer drops. Never blocks on I/O: a full queue, a body not
 * complete, or key and blobs over WR_CACHE_DISK_HEADER_MAX drop the put.
 * Returns true when queued; a full queue is counted in dropped_puts. A
 * later put of the same key and secondary key replaces the file.
 */
bool wr_cache_disk_put(struct wr_cache_disk *d, struct wr_cache_entry *e);

/* Waits until the queue is empty, nothing is being written, and the scan
 * at open is done (tests, and a shutdown that wants the queue on disk). */
void wr_cache_disk_flush(struct wr_cache_disk *d);

/* Whether a stored variant suits the request: secondary and meta as the
 * entry had them (cache.c's Vary rules on its meta). A pure comparison. */
typedef bool (*wr_cache_disk_match_fn)(struct wr_str secondary, struct wr_str meta, void *arg);

/* A lookup's result. wr_cache_disk_hit_init before the first use; the
 * buffer is kept across lookups (released by _fini). */
struct wr_cache_disk_hit {
    int fd;            /* the file, read-only; -1 when none. The caller
                          may take it (then it sets fd to -1): the file
                          stays readable even if removed meanwhile */
    uint64_t body_off; /* where the body starts in the file */
    uint64_t body_len;
    uint64_t stored_ms;
    struct wr_str key, secondary, head, meta; /* in buf, valid until the
                                                 next get, release or fini */
    char *buf;         /* private: header bytes (at most
                          WR_CACHE_DISK_HEADER_MAX) */
    size_t buf_cap;
};

void wr_cache_disk_hit_init(struct wr_cache_disk_hit *hit);
/* Closes fd if still held; keeps the buffer for the next get. */
void wr_cache_disk_hit_release(struct wr_cache_disk_hit *hit);
/* Release, and frees the buffer. */
void wr_cache_disk_hit_fini(struct wr_cache_disk_hit *hit);

/*
 * Looks key up on disk, on the caller's thread (blocking reads of small,
 * usually page-cached headers, like static.c's openat): reads the headers
 * of the key's variants (at most WR_CACHE_DISK_MAX_VARIANTS) until one has
 * this key and match says yes (match NULL: the first). True with *hit
 * filled (fd open; the previous contents of hit released first); false
 * when none matched (hit released). Corrupt or short files met on the way
 * are removed. Allocates only when hit's buffer must grow. A hit touches
 * the file's mtime (at most once a minute) for LRU eviction.
 */
bool wr_cache_disk_get(struct wr_cache_disk *d, struct wr_str key, wr_cache_disk_match_fn match,
                       void *arg, struct wr_cache_disk_hit *hit);

/* Removes every variant of key; returns how many files went. Any thread. */
size_t wr_cache_disk_remove_key(struct wr_cache_disk *d, struct wr_str key);

/* Removes every file whose key starts with prefix: a walk of the whole
 * tree reading each header (slow: purge from main's thread). Returns how
 * many files went. */
size_t wr_cache_disk_remove_prefix(struct wr_cache_disk *d, struct wr_str prefix);

struct wr_cache_disk_stats {
    uint64_t bytes;        /* files' total (learnt by the scan at open, then kept) */
    uint64_t files;
    uint64_t writes;       /* files written (total) */
    uint64_t dropped_puts; /* puts refused by a full queue, or dropped at close */
    uint64_t evictions;    /* files removed for the budget (total) */
    uint64_t corrupt;      /* files found corrupt and removed (total) */
    uint64_t write_errors; /* writes that failed (disk full, I/O error) */
    uint64_t expired;      /* files removed for inactive_ms (total) */
    bool is_scanned;       /* the scan at open is done (bytes, files exact) */
};

/* A snapshot (relaxed atomics). Any thread. */
void wr_cache_disk_stats(struct wr_cache_disk *d, struct wr_cache_disk_stats *out);

#endif
