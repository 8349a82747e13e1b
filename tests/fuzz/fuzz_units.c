/*
 * libFuzzer target for units: the input, cut at its first NUL and copied
 * into an exact-size heap buffer, goes to every parser. Beyond not
 * crashing, any violation aborts:
 *  - a parser that fails leaves *out untouched (durations, sizes, bools),
 *  - an accepted listen address has a non-empty canonical text that parses
 *    again to the same address and the same text (a fixed point),
 *  - an accepted duration or size has only digits and a known suffix,
 *  - an accepted duration is at most WR_UNITS_DURATION_MAX_MS (issue 13.14).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_listen(const char *text)
{
    struct wr_listen_addr a, again;
    if (wr_units_parse_listen(text, &a) != 0)
        return;
    if (a.text[0] == '\0' || a.addr_len == 0 || a.addr_len > sizeof(a.addr))
        abort();
    if (wr_units_parse_listen(a.text, &again) != 0 || strcmp(a.text, again.text) != 0 ||
        a.addr_len != again.addr_len || memcmp(&a.addr, &again.addr, a.addr_len) != 0)
        abort();
}

static void check_number(const char *text, int (*parse)(const char *, uint64_t *))
{
    uint64_t v = 0xdeadbeef;
    if (parse(text, &v) != 0) {
        if (v != 0xdeadbeef)
            abort();
        return;
    }
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || strlen(text) - digits > 2)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t len = nul != NULL ? (size_t)(nul - data) : size;
    char *text = malloc(len + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, len);
    text[len] = '\0';

    check_number(text, wr_units_parse_duration);
    uint64_t ms;
    if (wr_units_parse_duration(text, &ms) == 0 && ms > WR_UNITS_DURATION_MAX_MS)
        abort();
    check_number(text, wr_units_parse_size);
    bool b = true;
    if (wr_units_parse_bool(text, &b) != 0 && !b)
        abort();
    check_listen(text);
    free(text);
    return 0;
}
