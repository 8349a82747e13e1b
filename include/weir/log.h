/*
 * log: the error log (levelled lines to a file or stderr) and the access log
 * (combined or json, one line per request).
 *
 * Each worker formats access lines into its own buffer. To a regular file
 * it writes whole lines with one write() to an O_APPEND descriptor, so no
 * lock is taken and lines from different workers never interleave. To a
 * pipe, FIFO, socket or terminal it hands them to the log writer thread
 * (log_writer.h) through a bounded queue of its own, so a slow reader never
 * stalls a worker: past the bound, lines are dropped and counted. Error
 * lines follow the same rule. Log files are reopened in place (dup2 onto
 * the same descriptor number) on SIGUSR1, so workers never see a
 * descriptor change. Layer 2.
 */
#ifndef WEIR_LOG_H
#define WEIR_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "weir/config.h"
#include "weir/log_format.h"
#include "weir/str.h"

struct wr_log_writer_queue; /* log_writer.h */

/*
 * Opens path for appending and remembers it for wr_log_reopen. "stderr" and
 * "/dev/stderr" give fd 2 and "/dev/stdout" fd 1, as they are (not
 * reopened: they may be a socket, which cannot be opened by path). A FIFO
 * must already have a reader: without one the open fails with ENXIO rather
 * than wait. Returns the descriptor, or -1 with errno (wr_log_strerror
 * words it). Main thread only, before workers start.
 */
int wr_log_open(const char *path);

/* Reopens every file wr_log_open opened, keeping descriptor numbers (SIGUSR1,
 * after logrotate moved them). Returns 0, or -1 if any failed (the old file
 * stays in use). Main thread only. */
int wr_log_reopen(void);

/* strerror(err) for a wr_log_open failure, saying what ENXIO means there. */
const char *wr_log_strerror(int err);

/* Stops the log writer thread once what it holds is written (at most 2 s
 * when a reader stalls: the rest is lost), then closes what wr_log_open
 * opened. At exit, once no worker runs. */
void wr_log_close_all(void);

/* Sets where error lines go and the most verbose level written; lines to a
 * descriptor that is not a regular file go through the log writer. Main
 * thread, before workers start. */
void wr_log_set_error(int fd, enum wr_log_level level);

/* Error lines dropped so far because the log writer's queue was full (a
 * stalled reader of a pipe or socket). Any thread. */
uint64_t wr_log_error_lines_dropped(void);

/* While is_on, error and warn lines also go to stderr when the error log
 * is a file: a start-up failure is seen by whoever started weir (weir -c
 * in a terminal, systemd's journal), not only in the file. Main sets it
 * before opening the logs and clears it once weir serves. Any thread. */
void wr_log_echo_stderr(bool is_on);

/* Changes the most verbose level written (reload). Any thread. */
void wr_log_set_level(enum wr_log_level level);

/* True when lines at level are written (check before costly formatting). */
bool wr_log_is_enabled(enum wr_log_level level);

/*
 * Writes one error-log line: "2026-11-23T10:00:00.123Z [warn] w1 c42: msg".
 * worker < 0 is main; conn_id 0 means no connection. Any thread. Lines are
 * cut at 1 KiB. Never waits for a pipe or socket's reader (the line is
 * queued, or dropped and counted when the queue is full).
 */
void wr_log(enum wr_log_level level, int worker, uint64_t conn_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What names a request in an error-log line. Slices are borrowed (any may
 * be empty); they need only outlive the wr_log_request call. */
struct wr_log_request {
    struct wr_str id;     /* $request_id, the access log's request_id */
    struct wr_str client; /* the client's address */
    struct wr_str method;
    struct wr_str target; /* as received */
};

/*
 * wr_log for a line about one request: the message, then
 * ", client: ADDR, request: \"METHOD TARGET\", request_id: ID", escaped as
 * the access log escapes (the target cut at 256 bytes), so a warning can be
 * tied to its access-log line. Every per-request warn and error line goes
 * through it. Worker threads.
 */
void wr_log_request(enum wr_log_level level, int worker, uint64_t conn_id,
                    const struct wr_log_request *rq, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Copies s into out (cap >= 4 bytes, always NUL-terminated) escaped as the
 * error log's request suffix is: quotes, backslashes, control and non-ASCII
 * bytes as \xHH; at most max_len bytes of s, "..." marking a cut. For
 * request-derived text (a path under a root) inside a wr_log_request
 * message, so a client can never forge a line. Returns out. Any thread.
 */
const char *wr_log_escape(char *out, size_t cap, struct wr_str s, size_t max_len);

/* A budget of error-log lines per second, for lines a client or a dead
 * backend can trigger at will (STYLE §5). One per worker and purpose,
 * touched by its thread only. Zero-initialise. */
struct wr_log_budget {
    uint64_t second;       /* the second n_logged counts lines of */
    unsigned n_logged;
    uint64_t n_suppressed; /* lines refused since the last one allowed */
};

/*
 * True when one more line may be written at now_ms (at most per_second a
 * second); *n_suppressed is then the number refused since the last true,
 * to be said in that line, and restarts at 0. False: the line is counted
 * as suppressed. Owner thread only.
 */
bool wr_log_budget_take(struct wr_log_budget *b, unsigned per_second, uint64_t now_ms,
                        uint64_t *n_suppressed);

/* The access log descriptors main opened for the workers. */
struct wr_access_log_fds {
    int server;                           /* [server] access_log; -1: off */
    int routes[WR_ROUTE_ACCESS_LOGS_MAX]; /* the config's route_access_logs, in order */
    size_t n_routes;
};

/* Wall-clock time in milliseconds since the Unix epoch ($time_iso8601,
 * $msec). */
uint64_t wr_log_unix_ms(void);

/* A worker's access-log buffer. fd < 0 means the access log is off. */
struct wr_access_log {
    int fd;
    char *buf; /* owned */
    size_t len, cap;
    struct wr_log_writer_queue *queue; /* owned until fini; NULL when fd is a
                                          regular file (written directly) */
    _Atomic uint64_t *dropped_lines;   /* borrowed: the worker's metrics counter,
                                          or NULL; bumped by this worker only */
};

/* Prepares al (worker memory); when fd is not a regular file, with a queue
 * to the log writer. Main thread (before the worker starts). Returns 0, or
 * -1 on failure (allocation, errno). */
int wr_access_log_init(struct wr_access_log *al, int fd);

/* Flushes and frees al's buffer; its queued lines are still written. The
 * worker's thread. */
void wr_access_log_fini(struct wr_access_log *al);

/* Formats e in format f (the snapshot's) into the buffer, flushing first
 * when it is nearly full. A line is cut (never split across writes) past
 * 8 KiB. */
void wr_access_log_add(struct wr_access_log *al, const struct wr_log_format *f,
                       const struct wr_access_entry *e);

/* Writes whatever is buffered (called at least once a second); to a pipe,
 * socket or terminal, queues it for the log writer, dropping and counting
 * the lines the queue has no room for. Never waits for a reader. */
void wr_access_log_flush(struct wr_access_log *al);

#endif
