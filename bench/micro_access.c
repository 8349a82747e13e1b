/*
 * allow/deny lists (issue 19): ns per wr_access_allows for a route with
 * 100 rules whose last one matches the client (the static_1k_acl100
 * scenario's shape: 99 IPv4 deny ranges, then the allow), for an IPv4 and
 * an IPv6 client, beside a route without rules. Compare with static_1k's
 * µs/req: the issue asks for < 2 %.
 * Built by `cmake --build build/release --target micro_benches`.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "weir/cidr.h"

#define N_RULES 100
#define ROUNDS 2000000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double per_call(const struct wr_access_rule *rules, size_t n, const char *addr)
{
    volatile int allowed = 0;
    double t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++)
        allowed += wr_access_allows(rules, n, addr);
    double ns = (now_ns() - t0) / ROUNDS;
    if (allowed != ROUNDS)
        fprintf(stderr, "unexpected: %s refused\n", addr);
    return ns;
}

int main(void)
{
    static struct wr_access_rule v4[N_RULES], v6[N_RULES];
    for (int i = 0; i < N_RULES - 1; i++) {
        char text[48];
        snprintf(text, sizeof(text), "10.%d.0.0/16", i);
        v4[i].is_allow = false;
        wr_cidr_parse(text, &v4[i].range);
        snprintf(text, sizeof(text), "2001:db8:%x::/48", i);
        v6[i].is_allow = false;
        wr_cidr_parse(text, &v6[i].range);
    }
    v4[N_RULES - 1].is_allow = v6[N_RULES - 1].is_allow = true;
    wr_cidr_parse("127.0.0.1", &v4[N_RULES - 1].range);
    wr_cidr_parse("::1", &v6[N_RULES - 1].range);
    printf("micro_access: %d rules, the client matching the last\n", N_RULES);
    printf("  no rules          %6.1f ns/request\n", per_call(NULL, 0, "127.0.0.1"));
    printf("  100 rules, IPv4   %6.1f ns/request\n", per_call(v4, N_RULES, "127.0.0.1"));
    printf("  100 rules, IPv6   %6.1f ns/request\n", per_call(v6, N_RULES, "::1"));
    return 0;
}
