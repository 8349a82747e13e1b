/*
 * upstream: choosing a server of an [upstream] for a request, and the
 * servers' health. PLACEHOLDER while the full module is merged.
 * Layer 2.
 */
#ifndef WEIR_UPSTREAM_H
#define WEIR_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "weir/config.h"
#include "weir/http_parser.h"

struct event_base;
struct wr_balancer;

struct wr_balancer *wr_balancer_new(const struct wr_config *cfg);
void wr_balancer_free(struct wr_balancer *b);
int wr_balancer_pick(struct wr_balancer *b, const struct wr_upstream_cfg *up, struct wr_str key,
                     uint64_t tried_mask, uint64_t now_ms);
void wr_balancer_begin(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server);
void wr_balancer_end(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server);
struct wr_str wr_upstream_hash_key(const struct wr_upstream_cfg *up,
                                   const struct wr_http_request *req, struct wr_str client_ip);
void wr_upstream_report(const struct wr_upstream_cfg *up, int server, bool is_ok, uint64_t now_ms);
bool wr_upstream_is_up(const struct wr_upstream_cfg *up, int server, uint64_t now_ms);

#endif
