/*
 * demo: the pure part of weir-demo-app (the backend that `make run` puts
 * behind weir, and that integration tests use as a real upstream).
 *
 * Bytes in, bytes out: lineup generation, form and JSON field extraction,
 * JSON and HTML escaping, Accept negotiation and the page renderers. No
 * libevent, no I/O, no globals, so every function here is unit-tested
 * (tests/unit/test_demo.c). Not part of the weir binary.
 */
#ifndef WR_DEMO_H
#define WR_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable output buffer with a hard size bound.
 * data is owned, always NUL-terminated once something was added (so a
 * decoded field can be used as a C string when it holds no NUL byte).
 * After a failed allocation or passing max, is_failed is set, every later
 * add is ignored, and the contents must not be used. */
struct wr_demo_out {
    char *data;     /* owned; NULL until the first add */
    size_t len;     /* bytes used, not counting the NUL */
    size_t cap;     /* bytes allocated */
    size_t max_len; /* bound on len; adding past it sets is_failed */
    bool is_failed;
};

/* Empty buffer holding at most max_len bytes. */
void wr_demo_out_init(struct wr_demo_out *out, size_t max_len);
/* Frees data; the buffer may be initialised again. */
void wr_demo_out_fini(struct wr_demo_out *out);
/* Empties the buffer (keeps its memory), clears is_failed. */
void wr_demo_out_reset(struct wr_demo_out *out);
void wr_demo_out_add(struct wr_demo_out *out, const void *p, size_t len);
void wr_demo_out_str(struct wr_demo_out *out, const char *s);
void wr_demo_out_u64(struct wr_demo_out *out, uint64_t v);

/* ---- escaping ------------------------------------------------------------ */

/* Appends s as a quoted JSON string. Valid UTF-8 is kept; each byte of an
 * invalid sequence becomes U+FFFD; control characters, '"' and '\' are
 * escaped, and so are '<', '>' and '&' (so the JSON is safe to embed in an
 * HTML <script>). */
void wr_demo_json_str(struct wr_demo_out *out, const char *s, size_t len);
/* Appends s as a quoted JSON string where each byte is one code point
 * (ISO-8859-1): bytes >= 0x80 become \u0080..\u00ff. Lossless for any
 * bytes: a client gets them back with s.encode("latin-1"). Used for echoed
 * request data, which need not be UTF-8. */
void wr_demo_json_bytes(struct wr_demo_out *out, const char *s, size_t len);
/* Appends s escaped for HTML text and quoted attribute values: & < > " '
 * become references; invalid UTF-8 and control characters other than tab,
 * LF and CR become U+FFFD. */
void wr_demo_html(struct wr_demo_out *out, const char *s, size_t len);

/* True when s is valid UTF-8 with no control character (C0, DEL). */
bool wr_demo_is_clean_text(const char *s, size_t len);

/* ---- field extraction ---------------------------------------------------- */

enum wr_demo_field {
    WR_DEMO_FIELD_FOUND = 1,
    WR_DEMO_FIELD_ABSENT = 0,
    WR_DEMO_FIELD_MALFORMED = -1,  /* bad %-escape, or not JSON / not an object */
    WR_DEMO_FIELD_NOT_STRING = -2, /* JSON: the field is there but not a string */
};

/* Finds the first field called name in application/x-www-form-urlencoded
 * text (also a URI query): pairs split at '&', '+' is a space, %XX decoded.
 * On FOUND, value holds the decoded bytes (it is reset first). A malformed
 * %-escape in any key, or in the value of the field sought, is MALFORMED. */
enum wr_demo_field wr_demo_form_field(const char *form, size_t len, const char *name,
                                      struct wr_demo_out *value);

/* Finds the first member called name of the JSON object that must be the
 * whole of json (RFC 8259: strict syntax, valid UTF-8, nesting at most 32
 * deep). On FOUND, value holds the decoded string. Anything that is not one
 * well-formed object is MALFORMED, whether or not it has the field. */
enum wr_demo_field wr_demo_json_field(const char *json, size_t len, const char *name,
                                      struct wr_demo_out *value);

/* ---- the lineup ---------------------------------------------------------- */

#define WR_DEMO_SHOW_MAX 11    /* players on the pitch */
#define WR_DEMO_SHOW_DEFAULT 5
#define WR_DEMO_SQUAD 18       /* players generated per team */
#define WR_DEMO_TEXT_MAX 100   /* bytes in a team name or city */

struct wr_demo_player {
    char name[40];
    const char *position; /* static: "GK", "DF", "MF" or "FW" */
    unsigned rating;      /* 55..99 */
    unsigned number;      /* shirt number, 1..99, unique in the squad */
};

/* The value of show= as 1..WR_DEMO_SHOW_MAX, or -1 for anything else
 * (empty, a sign, a non-digit, out of range). */
int wr_demo_parse_show(const char *s, size_t len);

/* Fills players[0..n) with the n best of the team's squad, best first
 * (rating, then shirt number). The squad depends only on the bytes of the
 * team name: the same name always gives the same lineup. n must be
 * 1..WR_DEMO_SHOW_MAX. */
void wr_demo_lineup(const char *team, size_t team_len, unsigned n,
                    struct wr_demo_player *players);

/* True when an Accept field value ranks text/html above application/json
 * (q-values and wildcards as RFC 9110 §12.5.1; the most specific range
 * decides). NULL or equal preference: false (JSON is the default). */
bool wr_demo_prefers_html(const char *accept);

/* ---- renderers ----------------------------------------------------------- */

struct wr_demo_team {
    uint32_t id;
    size_t name_len, city_len;
    char name[WR_DEMO_TEXT_MAX + 1];
    char city[WR_DEMO_TEXT_MAX + 1];
};

/* {"team":..,"show":n,"players":[{"rank":1,"number":..,"name":..,
 *  "position":..,"rating":..},...]} */
void wr_demo_lineup_json(struct wr_demo_out *out, const char *team, size_t team_len,
                         const struct wr_demo_player *players, unsigned n);
/* A small HTML page with the same data in a table. */
void wr_demo_lineup_html(struct wr_demo_out *out, const char *team, size_t team_len,
                         const struct wr_demo_player *players, unsigned n);
/* {"id":..,"name":..,"city":..} */
void wr_demo_team_json(struct wr_demo_out *out, const struct wr_demo_team *team);
/* {"teams":[...],"count":n} */
void wr_demo_teams_json(struct wr_demo_out *out, const struct wr_demo_team *teams, size_t n);
/* A small HTML page listing the teams, each linking to its lineup. */
void wr_demo_teams_html(struct wr_demo_out *out, const struct wr_demo_team *teams, size_t n);
/* {"error":message} */
void wr_demo_error_json(struct wr_demo_out *out, const char *message);

#endif
