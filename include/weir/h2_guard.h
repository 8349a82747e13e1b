/*
 * h2_guard: the flood budgets of one HTTP/2 connection (RFC 9113 §10.5,
 * issue 15). Frames that cost us work but carry no request — a client
 * resetting streams it just opened (CVE-2023-44487), PING and SETTINGS,
 * PRIORITY, empty DATA, WINDOW_UPDATE — each spend a token from their own
 * bucket; a bucket refills at a steady rate and some are also earned by
 * useful work. An empty bucket means the peer is abusive: the front end
 * sends GOAWAY ENHANCE_YOUR_CALM and closes.
 *
 * Pure: no I/O, the clock is passed in. Layer 0. One guard per
 * connection, used by its worker only.
 */
#ifndef WEIR_H2_GUARD_H
#define WEIR_H2_GUARD_H

#include <stdbool.h>
#include <stdint.h>

enum wr_h2_guard_kind {
    WR_H2_GUARD_RESET,         /* RST_STREAM from the client on a stream still open */
    WR_H2_GUARD_CONTROL,       /* PING and SETTINGS (non-ACK) frames */
    WR_H2_GUARD_PRIORITY,      /* PRIORITY frames */
    WR_H2_GUARD_EMPTY_DATA,    /* DATA with no payload and no END_STREAM */
    WR_H2_GUARD_WINDOW_UPDATE, /* WINDOW_UPDATE frames */
    WR_H2_GUARD_N
};

struct wr_h2_guard {
    uint64_t milli[WR_H2_GUARD_N];     /* tokens left, in thousandths */
    uint64_t cap_milli[WR_H2_GUARD_N]; /* bucket size, in thousandths */
    uint64_t last_ms;                  /* clock of the last refill */
};

/*
 * Fills every bucket for a new connection that allows max_streams
 * concurrent streams (>= 1) at clock now_ms. Budgets: see h2_guard.c.
 */
void wr_h2_guard_init(struct wr_h2_guard *g, uint64_t max_streams, uint64_t now_ms);

/*
 * Spends one token of kind at clock now_ms (earlier clocks count as
 * now). Returns false when the bucket was empty: the peer went over
 * its budget (the caller cuts the connection); true otherwise.
 */
bool wr_h2_guard_spend(struct wr_h2_guard *g, enum wr_h2_guard_kind kind, uint64_t now_ms);

/* Adds n tokens of kind, up to the bucket size: useful work earned them. */
void wr_h2_guard_earn(struct wr_h2_guard *g, enum wr_h2_guard_kind kind, uint64_t n);

/* "rapid_reset", "control_flood", "priority_flood", "empty_data_flood",
 * "window_update_flood": the metrics reason of kind. */
const char *wr_h2_guard_reason(enum wr_h2_guard_kind kind);

#endif
