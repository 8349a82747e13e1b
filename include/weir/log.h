/*
 * log: the error log (levelled lines to a file or stderr) and the access log
 * (combined or json, one line per request).
 *
 * Each worker formats access lines into its own buffer and writes whole
 * lines with one write() to an O_APPEND descriptor, so no lock is taken and
 * lines from different workers never interleave. Log files are reopened in
 * place (dup2 onto the same descriptor number) on SIGUSR1, so workers never
 * see a descriptor change. Layer 2.
 */
#ifndef WEIR_LOG_H
#define WEIR_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "weir/config.h"
#include "weir/str.h"

/*
 * Opens path for appending ("stderr" gives fd 2) and remembers it for
 * wr_log_reopen. Returns the descriptor, or -1 with errno. Main thread only,
 * before workers start.
 */
int wr_log_open(const char *path);

/* Reopens every file wr_log_open opened, keeping descriptor numbers (SIGUSR1,
 * after logrotate moved them). Returns 0, or -1 if any failed (the old file
 * stays in use). Main thread only. */
int wr_log_reopen(void);

/* Closes what wr_log_open opened (at exit). */
void wr_log_close_all(void);

/* Sets where error lines go and the most verbose level written. Main thread,
 * before workers start. */
void wr_log_set_error(int fd, enum wr_log_level level);

/* Changes the most verbose level written (reload). Any thread. */
void wr_log_set_level(enum wr_log_level level);

/* True when lines at level are written (check before costly formatting). */
bool wr_log_is_enabled(enum wr_log_level level);

/*
 * Writes one error-log line: "2026-11-23T10:00:00.123Z [warn] w1 c42: msg".
 * worker < 0 is main; conn_id 0 means no connection. Any thread. Lines are
 * cut at 1 KiB.
 */
void wr_log(enum wr_log_level level, int worker, uint64_t conn_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One finished request, as the access log needs it. Slices are borrowed. */
struct wr_access_entry {
    struct wr_str remote_addr;
    struct wr_str method, target, host, referer, user_agent, request_id;
    int minor_version;
    int status;
    uint64_t bytes_sent;      /* body bytes */
    uint64_t request_time_us; /* from the first byte of the head */
    struct wr_str upstream_addr; /* proxied: the server that answered; else empty */
    uint64_t upstream_time_us;   /* proxied: request start -> response head */
    const char *log_time;     /* "23/Nov/2026:10:00:00 +0000" */
    const char *iso_time;     /* "2026-11-23T10:00:00Z" */
};

/* A worker's access-log buffer. fd < 0 means the access log is off. */
struct wr_access_log {
    int fd;
    enum wr_log_format format;
    char *buf; /* owned */
    size_t len, cap;
};

/* Prepares al (worker thread memory). Returns 0, or -1 on allocation failure. */
int wr_access_log_init(struct wr_access_log *al, int fd, enum wr_log_format format);

/* Flushes and frees al's buffer. */
void wr_access_log_fini(struct wr_access_log *al);

/* Formats e into the buffer, flushing first when it is nearly full. A line
 * is cut (never split across writes) past 8 KiB. */
void wr_access_log_add(struct wr_access_log *al, const struct wr_access_entry *e);

/* Writes whatever is buffered (called at least once a second). */
void wr_access_log_flush(struct wr_access_log *al);

#endif
