/* PLACEHOLDER: plain rotation, no health; replaced by the full module. */
#include "weir/upstream.h"

#include <stdlib.h>

struct wr_balancer {
    unsigned next;
};

struct wr_balancer *wr_balancer_new(const struct wr_config *cfg)
{
    (void)cfg;
    return calloc(1, sizeof(struct wr_balancer));
}

void wr_balancer_free(struct wr_balancer *b)
{
    free(b);
}

int wr_balancer_pick(struct wr_balancer *b, const struct wr_upstream_cfg *up, struct wr_str key,
                     uint64_t tried_mask, uint64_t now_ms)
{
    (void)key;
    (void)now_ms;
    for (size_t k = 0; k < up->n_servers; k++) {
        size_t i = (b->next + k) % up->n_servers;
        if (i < 64 && (tried_mask >> i) & 1)
            continue;
        b->next = (unsigned)(i + 1);
        return (int)i;
    }
    return -1;
}

void wr_balancer_begin(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server)
{
    (void)b, (void)up, (void)server;
}

void wr_balancer_end(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server)
{
    (void)b, (void)up, (void)server;
}

struct wr_str wr_upstream_hash_key(const struct wr_upstream_cfg *up,
                                   const struct wr_http_request *req, struct wr_str client_ip)
{
    (void)up, (void)req;
    return client_ip;
}

void wr_upstream_report(const struct wr_upstream_cfg *up, int server, bool is_ok, uint64_t now_ms)
{
    (void)up, (void)server, (void)is_ok, (void)now_ms;
}

bool wr_upstream_is_up(const struct wr_upstream_cfg *up, int server, uint64_t now_ms)
{
    (void)up, (void)server, (void)now_ms;
    return true;
}
