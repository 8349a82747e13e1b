/*
 * weir-bench-backend: the upstream of bench/run.py's proxy scenario.
 *
 *   weir-bench-backend [-t THREADS] PORT [FILE]
 *                                   (127.0.0.1; PORT 0 picks a free one)
 *
 * Answers every request with the same HTTP/1.1 200 and a fixed 100-byte
 * body (or FILE's bytes as text/html: the compression scenarios), keeps
 * every connection alive, and costs as little CPU as it can, so the
 * benchmark measures the proxy in front of it rather than this. One thread
 * by default, level-triggered epoll, no allocation per request.
 *
 * -t THREADS runs that many such loops, each with its own SO_REUSEPORT
 * listener on the one port, as a server with THREADS workers is built: the
 * floor for a server of that many threads (bench/run.py's floor_2t).
 *
 * It does not parse HTTP: a request is counted at each "\r\n\r\n", which
 * is right for the bodiless GETs the benchmark sends, pipelined or not, and
 * wrong for requests with bodies (deliberately out of scope). Responses are
 * identical, so what is owed to a connection is a count plus an offset into
 * a buffer holding many copies of the response.
 *
 * Prints "listening on 127.0.0.1:PORT" to stderr when ready; exits 0 on
 * SIGTERM or SIGINT after printing how many connections and requests it saw.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESPONSE                                                                                   \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"                 \
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrst" \
    "uvwxyzAB"
#define COPIES 256            /* small responses one write() may send */
#define MAX_FDS 65536
#define MAX_OWED 4096         /* stop reading a pipelining client past this */
#define MAX_ACCEPTS_PER_WAKE 64
#define MAX_READS_PER_WAKE 4  /* fairness between connections */
#define MAX_THREADS 16

struct conn {
    int fd;
    unsigned n_matched; /* bytes of "\r\n\r\n" seen at the end of the input so far */
    size_t n_owed;      /* responses not completely written */
    size_t offset;      /* bytes of the first owed response already written */
    uint32_t events;    /* what epoll watches for it now */
};

static char *copies;          /* n_copies responses back to back */
static size_t RESPONSE_LEN, copies_len;
static char stop_mark;              /* the signal fd's epoll data */
static atomic_ullong n_connections_all, n_requests_all;
static _Thread_local unsigned long long n_connections, n_requests;
static int signal_fd_all;           /* never read: readable stops every loop */

static void close_conn(int epfd, struct conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static void count_requests(struct conn *c, const char *buf, size_t len)
{
    static const char end[] = "\r\n\r\n";
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == end[c->n_matched])
            c->n_matched++;
        else
            c->n_matched = buf[i] == '\r';
        if (c->n_matched == 4) {
            c->n_matched = 0;
            c->n_owed++;
            n_requests++;
        }
    }
}

/* Writes what is owed; arms EPOLLOUT while something is left. -1: close. */
static int flush_conn(int epfd, struct conn *c)
{
    while (c->n_owed) {
        size_t left = c->n_owed * RESPONSE_LEN - c->offset;
        size_t chunk = copies_len - c->offset;
        ssize_t n = write(c->fd, copies + c->offset, left < chunk ? left : chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return -1;
        if (n < 0)
            break;
        size_t done = c->offset + (size_t)n;
        c->n_owed -= done / RESPONSE_LEN;
        c->offset = done % RESPONSE_LEN;
    }
    /* EPOLLOUT while something is owed; no EPOLLIN while too much is */
    uint32_t events = (c->n_owed ? (uint32_t)EPOLLOUT : 0u) |
                      (c->n_owed < MAX_OWED ? (uint32_t)EPOLLIN : 0u);
    if (events != c->events) {
        struct epoll_event ev = {.events = events, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
            return -1;
        c->events = events;
    }
    return 0;
}

static void on_readable(int epfd, struct conn *c)
{
    char buf[16384];
    for (int i = 0; i < MAX_READS_PER_WAKE && c->n_owed < MAX_OWED; i++) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            close_conn(epfd, c);
            return;
        }
        count_requests(c, buf, (size_t)n);
        if ((size_t)n < sizeof(buf))
            break;
    }
    if (flush_conn(epfd, c) < 0)
        close_conn(epfd, c);
}

static void on_acceptable(int epfd, int lfd)
{
    for (int i = 0; i < MAX_ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or EMFILE and friends: try again next wake-up */
        struct conn *c = fd < MAX_FDS ? calloc(1, sizeof(*c)) : NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->events = EPOLLIN;
        n_connections++;
    }
}

/* A listener on port (0: a free one); *bound is the port it got. */
static int listen_on(unsigned port, bool reuseport, unsigned *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        fprintf(stderr, "weir-bench-backend: 127.0.0.1:%u: %s\n", port, strerror(errno));
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

/* SIGTERM and SIGINT arrive as readable events, so the loop ends cleanly. */
static int signal_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* One loop: its listener, its connections, until the signal fd is readable. */
static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg, epfd = epoll_create1(EPOLL_CLOEXEC);
    /* listener: data.ptr NULL; signal fd: a sentinel pointer; else a conn */
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = (void *)&stop_mark};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, signal_fd_all, &sev) < 0) {
        fprintf(stderr, "weir-bench-backend: epoll: %s\n", strerror(errno));
        exit(1);
    }
    struct epoll_event events[256];
    for (bool stop = false; !stop;) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                on_acceptable(epfd, lfd);
            } else if (c == (void *)&stop_mark) {
                stop = true; /* the signal fd */
            } else if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
                on_readable(epfd, c); /* may close c: nothing below touches it */
            } else if (flush_conn(epfd, c) < 0) {
                close_conn(epfd, c);
            }
        }
    }
    /* Open connections are left to the exit. */
    close(epfd);
    close(lfd);
    atomic_fetch_add(&n_connections_all, n_connections);
    atomic_fetch_add(&n_requests_all, n_requests);
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long n_threads = 1;
    if (argc >= 3 && strcmp(argv[1], "-t") == 0) {
        n_threads = strtoul(argv[2], NULL, 10);
        argc -= 2;
        argv += 2;
    }
    char *end = NULL;
    unsigned long port = argc >= 2 ? strtoul(argv[1], &end, 10) : 0;
    if (argc < 2 || argc > 3 || !*argv[1] || *end || port > 65535 || n_threads < 1 ||
        n_threads > MAX_THREADS) {
        fprintf(stderr, "usage: weir-bench-backend [-t THREADS] PORT [FILE]"
                        "  (127.0.0.1; 0 picks one; 1..%d threads)\n", MAX_THREADS);
        return 2;
    }
    char *response = RESPONSE;
    RESPONSE_LEN = sizeof(RESPONSE) - 1;
    if (argc == 3) {
        FILE *f = fopen(argv[2], "rb");
        long size = -1;
        if (f && fseek(f, 0, SEEK_END) == 0)
            size = ftell(f);
        char head[128];
        int hn = snprintf(head, sizeof(head),
                          "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %ld"
                          "\r\n\r\n", size);
        response = size >= 0 ? malloc((size_t)hn + (size_t)size) : NULL;
        if (!response || fseek(f, 0, SEEK_SET) != 0 ||
            fread(response + hn, 1, (size_t)size, f) != (size_t)size) {
            fprintf(stderr, "weir-bench-backend: cannot read %s\n", argv[2]);
            return 1;
        }
        fclose(f);
        memcpy(response, head, (size_t)hn);
        RESPONSE_LEN = (size_t)hn + (size_t)size;
    }
    size_t n_copies = RESPONSE_LEN >= 32768 ? 1 : COPIES;
    copies_len = n_copies * RESPONSE_LEN;
    copies = malloc(copies_len);
    if (!copies)
        return 1;
    for (size_t i = 0; i < n_copies; i++)
        memcpy(copies + i * RESPONSE_LEN, response, RESPONSE_LEN);
    signal_fd_all = signal_fd();
    int lfds[MAX_THREADS];
    unsigned bound = (unsigned)port;
    for (unsigned long t = 0; t < n_threads; t++) {
        lfds[t] = listen_on(bound, n_threads > 1, &bound);
        if (lfds[t] < 0 || signal_fd_all < 0)
            return 1;
    }
    fprintf(stderr, "weir-bench-backend: listening on 127.0.0.1:%u\n", bound);
    pthread_t threads[MAX_THREADS];
    for (unsigned long t = 1; t < n_threads; t++) {
        if (pthread_create(&threads[t], NULL, serve, (void *)(intptr_t)lfds[t]) != 0) {
            fprintf(stderr, "weir-bench-backend: cannot start a thread\n");
            return 1;
        }
    }
    serve((void *)(intptr_t)lfds[0]);
    for (unsigned long t = 1; t < n_threads; t++)
        pthread_join(threads[t], NULL);
    fprintf(stderr, "weir-bench-backend: %llu connections, %llu requests\n",
            (unsigned long long)n_connections_all, (unsigned long long)n_requests_all);
    close(signal_fd_all);
    return 0;
}
