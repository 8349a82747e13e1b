/*
 * path: request path normalisation, the form routes match and static files
 * are looked up by.
 *
 * One pass over the raw bytes. Each segment is decoded straight into out;
 * when the segment ends (a raw '/' or the end of input) it is inspected
 * there: "." is dropped, ".." also drops the segment before it, an empty
 * segment ("//") adds nothing. out[0..o) therefore always holds "/" followed
 * by complete segments, each ending with '/' except possibly the last, and
 * backing up over a removed segment costs no more than writing it did, so
 * the whole is O(len).
 *
 * Deliberately not here: query splitting (the parser does it), anything
 * that allocates, and any notion of a filesystem root (static.c opens files
 * relative to a root directory descriptor; this only guarantees that no
 * ".." survives).
 *
 * Invariants of a result: it starts with '/', is never longer than the
 * input, holds no "//", no "." or ".." segment, no NUL or control byte, and
 * every '%' in it starts "%2F" or "%25". A decoded '/' stays "%2F" so it can
 * never create a segment boundary that the route or the root check did not
 * see; a decoded '%' stays "%25" so the result is never decoded twice into
 * something else.
 */
#include "weir/path.h"

#include <stdbool.h>

/* Byte classes for the main loop: most bytes are copied as they are. */
enum byte_class {
    BYTE_PLAIN = 0,   /* copied */
    BYTE_SLASH,       /* ends a segment */
    BYTE_PERCENT,     /* starts an escape */
    BYTE_CONTROL,     /* NUL, C0 controls and DEL: refused */
};

/* Value of a hex digit, or -1. */
static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* ASCII letters to lower case; digits are handled above */
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static enum byte_class classify(unsigned char c)
{
    if (c == '/')
        return BYTE_SLASH;
    if (c == '%')
        return BYTE_PERCENT;
    if (is_control(c))
        return BYTE_CONTROL;
    return BYTE_PLAIN;
}

/*
 * Decodes the escape at raw[i] == '%' into out at *o. Returns the number of
 * raw bytes consumed (3), or 0 when the escape is malformed or decodes to a
 * control byte.
 */
static size_t decode_escape(const char *raw, size_t len, size_t i, char *out, size_t *o)
{
    if (len - i < 3)
        return 0;
    int hi = hex_value((unsigned char)raw[i + 1]);
    int lo = hex_value((unsigned char)raw[i + 2]);
    if (hi < 0 || lo < 0)
        return 0;
    unsigned char c = (unsigned char)(hi << 4 | lo);
    if (c == '/' || c == '%') {
        /* Kept encoded (see the file comment), hex in upper case so that
         * equal paths are equal bytes. */
        out[(*o)++] = '%';
        out[(*o)++] = '2';
        out[(*o)++] = c == '/' ? 'F' : '5';
        return 3;
    }
    if (is_control(c))
        return 0;
    out[(*o)++] = (char)c;
    return 3;
}

/*
 * Handles the segment out[seg..*o) that just ended; has_slash says whether a
 * raw '/' ended it. Returns false when ".." would climb above the root.
 */
static bool close_segment(char *out, size_t seg, size_t *o, bool has_slash)
{
    size_t n = *o - seg;
    if (n == 0)
        return true; /* "//" or the final '/': the '/' before it is enough */
    if (n == 1 && out[seg] == '.') {
        *o = seg; /* "/a/." keeps the slash: the result names a directory */
        return true;
    }
    if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        /* RFC 3986 §5.2.4 would silently stay at the root; a client that
         * climbs above it is probing for traversal, so refuse instead. */
        if (seg == 1)
            return false;
        size_t p = seg - 1; /* out[p] is the '/' that ends the previous segment */
        while (out[p - 1] != '/')
            p--;
        *o = p;
        return true;
    }
    if (has_slash)
        out[(*o)++] = '/';
    return true;
}

int wr_path_normalize(const char *raw, size_t len, char *out, size_t *out_len)
{
    if (len == 0 || raw[0] != '/')
        return 400;
    out[0] = '/';
    size_t o = 1;   /* bytes of out in use */
    size_t seg = 1; /* where the current segment starts in out */
    size_t i = 1;
    while (i < len) {
        unsigned char c = (unsigned char)raw[i];
        switch (classify(c)) {
        case BYTE_PLAIN:
            out[o++] = (char)c;
            i++;
            break;
        case BYTE_SLASH:
            if (!close_segment(out, seg, &o, true))
                return 400;
            seg = o;
            i++;
            break;
        case BYTE_PERCENT: {
            size_t used = decode_escape(raw, len, i, out, &o);
            if (used == 0)
                return 400;
            i += used;
            break;
        }
        case BYTE_CONTROL:
            return 400;
        }
    }
    if (!close_segment(out, seg, &o, false))
        return 400;
    *out_len = o;
    return 0;
}

bool wr_path_strip_prefix(struct wr_str path, struct wr_str prefix, struct wr_str *rest)
{
    if (prefix.len == 0 || !wr_str_has_prefix(path, prefix))
        return false;
    bool is_boundary = path.len == prefix.len || path.ptr[prefix.len] == '/' ||
                       prefix.ptr[prefix.len - 1] == '/';
    if (!is_boundary)
        return false;
    *rest = (struct wr_str){path.ptr + prefix.len, path.len - prefix.len};
    return true;
}
