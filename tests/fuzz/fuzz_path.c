/*
 * libFuzzer target for wr_path_normalize. Beyond not crashing, every result
 * must keep the invariants path.h promises; any violation aborts:
 *  - 0 or 400 only; on 0 the result is no longer than the input,
 *  - starts with '/', holds no "//", no "." or ".." segment (inside or at
 *    the end), no NUL, control byte or DEL,
 *  - every '%' starts "%2F" or "%25",
 *  - normalising the result again gives the same bytes (a fixed point),
 *  - status and result equal those of a slow reference written the obvious
 *    way (split on '/', decode each segment, keep a stack of segments).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_segments(const char *p, size_t len)
{
    /* Segments lie between slashes; p[0] == '/' was checked. */
    size_t start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        size_t n = i - start;
        if (n == 0 && i < len)
            abort(); /* "//" */
        if (n == 1 && p[start] == '.')
            abort();
        if (n == 2 && p[start] == '.' && p[start + 1] == '.')
            abort();
        start = i + 1;
    }
}

static void check_bytes(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f)
            abort();
        if (c == '%' &&
            (len - i < 3 || p[i + 1] != '2' || (p[i + 2] != 'F' && p[i + 2] != '5')))
            abort();
    }
}

static int ref_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one raw segment raw[0..len) into dst; returns its length or -1. */
static long ref_decode(const char *raw, size_t len, char *dst)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = ref_hex((unsigned char)raw[i + 1]);
            int lo = ref_hex((unsigned char)raw[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            if (c == '/' || c == '%') {
                memcpy(dst + n, c == '/' ? "%2F" : "%25", 3);
                n += 3;
                continue;
            }
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        dst[n++] = (char)c;
    }
    return (long)n;
}

/* The slow reference; out holds at least len + 1 bytes. */
static int ref_normalize(const char *raw, size_t len, char *out, size_t *out_len)
{
    if (len == 0 || raw[0] != '/')
        return 400;
    char *seg = malloc(len);
    size_t *ends = malloc(sizeof(*ends) * len); /* out[0..ends[k]) = "/s1/.../s(k+1)" */
    if (seg == NULL || ends == NULL)
        abort();
    size_t depth = 0, o = 1;
    bool trailing = false;
    int rc = 0;
    out[0] = '/';
    for (size_t start = 1; start <= len;) {
        const char *slash = memchr(raw + start, '/', len - start);
        size_t stop = slash != NULL ? (size_t)(slash - raw) : len;
        long n = ref_decode(raw + start, stop - start, seg);
        if (n < 0) {
            rc = 400;
            break;
        }
        trailing = slash == NULL; /* an empty or dot last segment leaves a '/' */
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            if (depth == 0) {
                rc = 400;
                break;
            }
            depth--;
            o = depth > 0 ? ends[depth - 1] : 1;
        } else if (n > 0 && !(n == 1 && seg[0] == '.')) {
            if (depth > 0)
                out[o++] = '/';
            memcpy(out + o, seg, (size_t)n);
            o += (size_t)n;
            ends[depth++] = o;
            trailing = false;
        }
        start = stop + 1;
    }
    if (rc == 0 && trailing && depth > 0)
        out[o++] = '/';
    free(seg);
    free(ends);
    *out_len = o;
    return rc;
}

static void check_against_reference(const uint8_t *data, size_t size, int rc, const char *out,
                                     size_t out_len)
{
    char *ref = malloc(size + 1);
    if (ref == NULL)
        abort();
    size_t ref_len = SIZE_MAX;
    int ref_rc = ref_normalize((const char *)data, size, ref, &ref_len);
    if (ref_rc != rc)
        abort();
    if (rc == 0 && (ref_len != out_len || memcmp(ref, out, out_len) != 0))
        abort();
    free(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size output: a write past size is an ASan report. */
    char *out = malloc(size > 0 ? size : 1);
    if (out == NULL)
        abort();
    size_t out_len = SIZE_MAX;
    int rc = wr_path_normalize((const char *)data, size, out, &out_len);
    if (rc != 0 && rc != 400)
        abort();
    check_against_reference(data, size, rc, out, out_len);
    if (rc != 0) {
        free(out);
        return 0;
    }
    if (out_len == 0 || out_len > size || out[0] != '/')
        abort();
    check_bytes(out, out_len);
    check_segments(out, out_len);

    char *again = malloc(out_len);
    if (again == NULL)
        abort();
    size_t again_len = SIZE_MAX;
    if (wr_path_normalize(out, out_len, again, &again_len) != 0 || again_len != out_len ||
        memcmp(again, out, out_len) != 0)
        abort();
    free(again);
    free(out);
    return 0;
}
