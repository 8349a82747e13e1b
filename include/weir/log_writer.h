/*
 * log_writer: one thread that writes log lines to the descriptors no worker
 * may write itself: pipes and FIFOs, sockets (systemd's journal), terminals.
 *
 * A regular file opened O_APPEND takes one write() of whole lines
 * atomically, whoever writes it, and never makes the writer wait for a
 * reader: log.c writes those directly. Nothing of the kind holds elsewhere:
 * a pipe keeps only writes of at most PIPE_BUF (4 KiB) whole, a stream
 * socket nothing, and any of them blocks its writer while the reader does
 * not read. So producers (a worker's access log, any thread's error lines)
 * hand whole lines to a bounded queue of their own and return at once; the
 * writer thread, the only one that writes those descriptors, moves whole
 * lines from the queues into an outbox per descriptor and writes them out,
 * never starting another line on any descriptor while one is half written.
 * A queue that is full refuses the lines that do not fit: the producer
 * counts them as dropped. Layer 2.
 */
#ifndef WEIR_LOG_WRITER_H
#define WEIR_LOG_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wr_log_writer_queue;

/* True when fd is not a regular file, so that its lines must go through
 * the writer thread (false too when fstat fails: the write will tell). */
bool wr_log_writer_is_needed(int fd);

/*
 * A queue of cap bytes (rounded up to a power of two, at least 16 KiB)
 * whose lines go to fd, registered with the writer thread (started on the
 * first queue, with every signal blocked). is_shared: producers on several
 * threads (serialised by a mutex held for a memcpy); else exactly one
 * producer thread. fd must stay open until wr_log_writer_stop. Returns the
 * queue or NULL with errno. Main thread (or a test's only thread).
 */
struct wr_log_writer_queue *wr_log_writer_queue_new(int fd, size_t cap, bool is_shared);

/*
 * lines[0..len) is whole lines, each ending in '\n'. Appends as many of
 * them as fit, in order, and wakes the writer. Returns the bytes taken
 * (0..len, at a line boundary); the caller counts the lines left as
 * dropped. Never blocks on I/O. The queue's producer thread(s).
 */
size_t wr_log_writer_push(struct wr_log_writer_queue *q, const char *lines, size_t len);

/* The producer is done with q: what is queued is still written, then the
 * writer frees q. q must not be used afterwards. Producer thread. */
void wr_log_writer_queue_close(struct wr_log_writer_queue *q);

/*
 * Stops the writer thread: what is queued is written for at most
 * timeout_ms (a reader that stays stalled longer loses the rest), then the
 * thread is joined and every queue freed. No-op when it does not run. Main
 * thread, once no producer uses a queue; a later queue starts it again.
 */
void wr_log_writer_stop(uint64_t timeout_ms);

#endif
