/*
 * Unit tests for demo (the pure part of weir-demo-app): the bounded output
 * buffer, JSON and HTML escaping of hostile bytes, form and JSON field
 * extraction (strictness, nesting bound, first match wins), show=, the
 * lineup's determinism and order, Accept negotiation and the renderers.
 * Inputs to the parsers are exact-size heap copies so ASan sees over-reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static char *heap_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

/* Runs an escaper on an exact-size copy of s and compares the result. */
static void check_escape(void (*fn)(struct wr_demo_out *, const char *, size_t), const char *s,
                         size_t len, const char *want)
{
    char *in = heap_copy(s, len);
    struct wr_demo_out out;
    wr_demo_out_init(&out, 4096);
    fn(&out, in, len);
    assert_false(out.is_failed);
    assert_string_equal(out.data, want);
    wr_demo_out_fini(&out);
    free(in);
}
#define ESC(fn, lit, want) check_escape(fn, lit, sizeof(lit) - 1, want)

static void test_out_bounds(void **state)
{
    (void)state;
    struct wr_demo_out out;
    wr_demo_out_init(&out, 5);
    wr_demo_out_str(&out, "abc");
    wr_demo_out_u64(&out, 42);
    assert_false(out.is_failed);
    assert_string_equal(out.data, "abc42");
    wr_demo_out_str(&out, "x");
    assert_true(out.is_failed);
    wr_demo_out_str(&out, ""); /* ignored once failed */
    assert_true(out.is_failed);
    wr_demo_out_reset(&out);
    assert_false(out.is_failed);
    assert_int_equal(out.len, 0);
    for (int i = 0; i < 1000; i++) /* growth past the first block */
        wr_demo_out_add(&out, "y", 1);
    assert_true(out.is_failed);
    assert_int_equal(out.len, 5);
    wr_demo_out_fini(&out);
    wr_demo_out_init(&out, 100000);
    for (int i = 0; i < 1000; i++)
        wr_demo_out_str(&out, "0123456789");
    assert_int_equal(out.len, 10000);
    assert_int_equal(strlen(out.data), 10000);
    wr_demo_out_fini(&out);
}

static void test_json_str(void **state)
{
    (void)state;
    ESC(wr_demo_json_str, "Lions", "\"Lions\"");
    ESC(wr_demo_json_str, "", "\"\"");
    ESC(wr_demo_json_str, "a\"b\\c", "\"a\\\"b\\\\c\"");
    ESC(wr_demo_json_str, "\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    ESC(wr_demo_json_str, "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
    ESC(wr_demo_json_str, "a\0b", "\"a\\u0000b\"");
    ESC(wr_demo_json_str, "</script>&", "\"\\u003c/script\\u003e\\u0026\"");
    ESC(wr_demo_json_str, "Zo\xc3\xa9 \xf0\x9f\x98\x80", "\"Zo\xc3\xa9 \xf0\x9f\x98\x80\"");
    /* invalid UTF-8: lone continuation, overlong, surrogate, truncated */
    ESC(wr_demo_json_str, "a\x80z", "\"a\\ufffdz\"");
    ESC(wr_demo_json_str, "\xc0\xaf", "\"\\ufffd\\ufffd\"");
    ESC(wr_demo_json_str, "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    ESC(wr_demo_json_str, "x\xe2\x82", "\"x\\ufffd\\ufffd\"");
    ESC(wr_demo_json_str, "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
}

static void test_json_bytes(void **state)
{
    (void)state;
    ESC(wr_demo_json_bytes, "/a?b=1&c", "\"/a?b=1\\u0026c\"");
    ESC(wr_demo_json_bytes, "\xc3\xa9\xff", "\"\\u00c3\\u00a9\\u00ff\"");
    ESC(wr_demo_json_bytes, "\"\\\t", "\"\\\"\\\\\\t\"");
}

static void test_html(void **state)
{
    (void)state;
    ESC(wr_demo_html, "plain", "plain");
    ESC(wr_demo_html, "<b>&\"'", "&lt;b&gt;&amp;&quot;&#39;");
    ESC(wr_demo_html, "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
    ESC(wr_demo_html, "a\tb\nc", "a\tb\nc");
    ESC(wr_demo_html, "a\x01" "b", "a\xef\xbf\xbd" "b");
    ESC(wr_demo_html, "a\0b", "a\xef\xbf\xbd" "b");
    ESC(wr_demo_html, "\xff", "\xef\xbf\xbd");
    ESC(wr_demo_html, "caf\xc3\xa9", "caf\xc3\xa9");
}

static void test_clean_text(void **state)
{
    (void)state;
    assert_true(wr_demo_is_clean_text("Lions FC", 8));
    assert_true(wr_demo_is_clean_text("", 0));
    assert_true(wr_demo_is_clean_text("Zo\xc3\xa9", 4));
    assert_false(wr_demo_is_clean_text("a\nb", 3));
    assert_false(wr_demo_is_clean_text("a\0b", 3));
    assert_false(wr_demo_is_clean_text("a\x7f", 2));
    assert_false(wr_demo_is_clean_text("\xc3", 1));
    assert_false(wr_demo_is_clean_text("\xc3\xa9\xa9", 3));
}

/* The field sought in an exact-size copy of form; the value in *got. */
static enum wr_demo_field form(const char *text, const char *name, char got[256])
{
    size_t len = strlen(text);
    char *in = heap_copy(text, len);
    struct wr_demo_out v;
    wr_demo_out_init(&v, 255);
    enum wr_demo_field f = wr_demo_form_field(in, len, name, &v);
    got[0] = '\0';
    if (f == WR_DEMO_FIELD_FOUND) {
        assert_non_null(v.data);
        memcpy(got, v.data, v.len + 1);
    }
    wr_demo_out_fini(&v);
    free(in);
    return f;
}

static void test_form_field(void **state)
{
    (void)state;
    char got[256];
    assert_int_equal(form("team=Lions&show=3", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "Lions");
    assert_int_equal(form("team=Lions&show=3", "show", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "3");
    assert_int_equal(form("team=Red+Lions%21%3c", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "Red Lions!<");
    assert_int_equal(form("a=1&team=x&team=y", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "x");
    assert_int_equal(form("team=", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "");
    assert_int_equal(form("team", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "");
    assert_int_equal(form("te%61m=enc", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "enc");
    assert_int_equal(form("teams=1&tea=2&&=3", "team", got), WR_DEMO_FIELD_ABSENT);
    assert_int_equal(form("", "team", got), WR_DEMO_FIELD_ABSENT);
    assert_int_equal(form("team=a%2", "team", got), WR_DEMO_FIELD_MALFORMED);
    assert_int_equal(form("team=a%zz", "team", got), WR_DEMO_FIELD_MALFORMED);
    assert_int_equal(form("x%=1&team=a", "team", got), WR_DEMO_FIELD_MALFORMED);
    /* a bad escape in another field's value does not matter */
    assert_int_equal(form("x=%&team=a", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "a");
    assert_int_equal(form("team=a=b", "team", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "a=b");
}

static enum wr_demo_field json(const char *text, const char *name, char got[256])
{
    size_t len = strlen(text);
    char *in = heap_copy(text, len);
    struct wr_demo_out v;
    wr_demo_out_init(&v, 255);
    enum wr_demo_field f = wr_demo_json_field(in, len, name, &v);
    got[0] = '\0';
    if (f == WR_DEMO_FIELD_FOUND)
        memcpy(got, v.data, v.len + 1);
    wr_demo_out_fini(&v);
    free(in);
    return f;
}

static void test_json_field(void **state)
{
    (void)state;
    char got[256];
    assert_int_equal(json("{\"name\":\"Lions\",\"city\":\"Rome\"}", "city", got),
                     WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "Rome");
    assert_int_equal(json(" {\n\"a\" : [1, -2.5e+3, true, false, null, {\"b\": {}}, []],"
                          " \"name\" : \"x\\\"y\\\\z\\/\\n\" } ", "name", got),
                     WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "x\"y\\z/\n");
    assert_int_equal(json("{\"name\":\"\\u00e9\\ud83d\\ude00\"}", "name", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(json("{\"name\":\"a\",\"name\":\"b\"}", "name", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "a");
    assert_int_equal(json("{\"nam\\u0065\":\"esc\"}", "name", got), WR_DEMO_FIELD_FOUND);
    assert_string_equal(got, "esc");
    assert_int_equal(json("{}", "name", got), WR_DEMO_FIELD_ABSENT);
    assert_int_equal(json("{\"city\":\"x\"}", "name", got), WR_DEMO_FIELD_ABSENT);
    assert_int_equal(json("{\"name\":1}", "name", got), WR_DEMO_FIELD_NOT_STRING);
    assert_int_equal(json("{\"name\":null}", "name", got), WR_DEMO_FIELD_NOT_STRING);
    static const char *const bad[] = {
        "", " ", "[]", "\"name\"", "{", "{\"name\":\"x\"", "{\"name\":\"x\",}",
        "{\"name\":\"x\"} x", "{\"name\":\"x\"}{}", "{name:\"x\"}", "{'name':'x'}",
        "{\"name\":\"a\nb\"}", "{\"name\":\"\\x\"}", "{\"name\":\"\\u12\"}",
        "{\"name\":\"\\ud800\"}", "{\"name\":\"\\udc00\"}", "{\"name\":\"\\ud800\\u0041\"}",
        "{\"name\":\"\xff\"}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}",
        "{\"a\":1e}", "{\"a\":tru}", "{\"a\":[1,]}", "{\"a\" 1}", "{,}", "{\"a\":+1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (json(bad[i], "name", got) != WR_DEMO_FIELD_MALFORMED)
            fail_msg("accepted bad JSON %s", bad[i]);
    }
}

static void test_json_depth(void **state)
{
    (void)state;
    char text[256], got[256];
    /* the top-level object is depth 1: 31 nested arrays inside it fit */
    for (int depth = 31; depth <= 32; depth++) {
        int n = snprintf(text, sizeof(text), "{\"a\":");
        for (int i = 0; i < depth; i++)
            text[n++] = '[';
        for (int i = 0; i < depth; i++)
            text[n++] = ']';
        snprintf(text + n, sizeof(text) - (size_t)n, ",\"name\":\"ok\"}");
        enum wr_demo_field f = json(text, "name", got);
        assert_int_equal(f, depth == 31 ? WR_DEMO_FIELD_FOUND : WR_DEMO_FIELD_MALFORMED);
    }
    /* 100000 '[' must not recurse 100000 deep */
    size_t len = 100000 + 6;
    char *deep = malloc(len);
    assert_non_null(deep);
    memcpy(deep, "{\"a\":", 5);
    memset(deep + 5, '[', len - 5);
    struct wr_demo_out v;
    wr_demo_out_init(&v, 16);
    assert_int_equal(wr_demo_json_field(deep, len, "name", &v), WR_DEMO_FIELD_MALFORMED);
    wr_demo_out_fini(&v);
    free(deep);
}

static void test_json_value_bound(void **state)
{
    (void)state;
    const char *text = "{\"name\":\"0123456789\"}";
    struct wr_demo_out v;
    wr_demo_out_init(&v, 4);
    assert_int_equal(wr_demo_json_field(text, strlen(text), "name", &v), WR_DEMO_FIELD_FOUND);
    assert_true(v.is_failed); /* the caller sees the value did not fit */
    wr_demo_out_fini(&v);
}

static void test_parse_show(void **state)
{
    (void)state;
    assert_int_equal(wr_demo_parse_show("1", 1), 1);
    assert_int_equal(wr_demo_parse_show("11", 2), 11);
    assert_int_equal(wr_demo_parse_show("05", 2), 5);
    assert_int_equal(wr_demo_parse_show("0", 1), -1);
    assert_int_equal(wr_demo_parse_show("12", 2), -1);
    assert_int_equal(wr_demo_parse_show("", 0), -1);
    assert_int_equal(wr_demo_parse_show("-1", 2), -1);
    assert_int_equal(wr_demo_parse_show("+3", 2), -1);
    assert_int_equal(wr_demo_parse_show("3x", 2), -1);
    assert_int_equal(wr_demo_parse_show("0003", 4), -1);
    assert_int_equal(wr_demo_parse_show("99999999999999999999", 20), -1);
}

static void test_lineup(void **state)
{
    (void)state;
    struct wr_demo_player a[WR_DEMO_SHOW_MAX], b[WR_DEMO_SHOW_MAX], c[WR_DEMO_SHOW_MAX];
    wr_demo_lineup("Lions", 5, WR_DEMO_SHOW_MAX, a);
    wr_demo_lineup("Lions", 5, 3, b);
    wr_demo_lineup("Tigers", 6, WR_DEMO_SHOW_MAX, c);
    bool is_same_as_tigers = true;
    bool is_taken[100] = {false};
    for (unsigned i = 0; i < WR_DEMO_SHOW_MAX; i++) {
        assert_true(a[i].rating >= 55 && a[i].rating <= 99);
        assert_true(a[i].number >= 1 && a[i].number <= 99);
        assert_false(is_taken[a[i].number]);
        is_taken[a[i].number] = true;
        assert_true(strlen(a[i].name) > 3);
        assert_non_null(strstr("GK DF MF FW", a[i].position));
        if (i)
            assert_true(a[i - 1].rating > a[i].rating ||
                        (a[i - 1].rating == a[i].rating && a[i - 1].number < a[i].number));
        if (i < 3) { /* a shorter lineup is the same best players */
            assert_string_equal(a[i].name, b[i].name);
            assert_int_equal(a[i].rating, b[i].rating);
        }
        if (strcmp(a[i].name, c[i].name) != 0 || a[i].rating != c[i].rating)
            is_same_as_tigers = false;
    }
    assert_false(is_same_as_tigers);
    /* any bytes make a team, the empty name too */
    wr_demo_lineup("\0\xff<", 3, 1, b);
    wr_demo_lineup("", 0, 1, b);
    assert_true(b[0].rating >= 55);
}

static void test_prefers_html(void **state)
{
    (void)state;
    assert_false(wr_demo_prefers_html(NULL));
    assert_false(wr_demo_prefers_html(""));
    assert_false(wr_demo_prefers_html("*/*"));
    assert_false(wr_demo_prefers_html("application/json"));
    assert_true(wr_demo_prefers_html("text/html"));
    assert_true(wr_demo_prefers_html("TEXT/HTML ; charset=utf-8"));
    assert_true(wr_demo_prefers_html(
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    assert_false(wr_demo_prefers_html("text/html;q=0.5, application/json"));
    assert_true(wr_demo_prefers_html("text/html, application/json;q=0.9"));
    assert_false(wr_demo_prefers_html("text/html;q=0, */*"));
    assert_true(wr_demo_prefers_html("text/*, application/*;q=0.2"));
    assert_false(wr_demo_prefers_html("text/html, application/json"));
    assert_false(wr_demo_prefers_html("text/html;q=2"));     /* bad q: ignored */
    assert_false(wr_demo_prefers_html("text/html;q=0.1234"));
    assert_true(wr_demo_prefers_html("text/html;q=1.000, */*;q=0.999"));
    assert_false(wr_demo_prefers_html(",,, ;q=1, text/plain"));
}

static void test_renderers(void **state)
{
    (void)state;
    struct wr_demo_player p[2];
    const char team[] = "<script>\"x\"&";
    wr_demo_lineup(team, sizeof(team) - 1, 2, p);
    struct wr_demo_out out;
    wr_demo_out_init(&out, 1 << 20);
    wr_demo_lineup_json(&out, team, sizeof(team) - 1, p, 2);
    assert_false(out.is_failed);
    assert_non_null(strstr(out.data, "{\"team\":\"\\u003cscript\\u003e\\\"x\\\"\\u0026\","
                                     "\"show\":2,\"players\":[{\"rank\":1,"));
    assert_null(strchr(out.data, '<'));
    wr_demo_out_reset(&out);
    wr_demo_lineup_html(&out, team, sizeof(team) - 1, p, 2);
    assert_non_null(strstr(out.data, "<h1>Best 2 of &lt;script&gt;&quot;x&quot;&amp;</h1>"));
    assert_null(strstr(out.data, "<script>"));
    assert_non_null(strstr(out.data, "team=%3Cscript%3E%22x%22%26&amp;show=2"));
    wr_demo_out_reset(&out);

    struct wr_demo_team t[2] = {{.id = 1, .name = "A&B", .name_len = 3},
                                {.id = 2, .name = "C", .name_len = 1, .city = "D\"", .city_len = 2}};
    wr_demo_teams_json(&out, t, 2);
    assert_string_equal(out.data, "{\"count\":2,\"teams\":[{\"id\":1,\"name\":\"A\\u0026B\","
                                  "\"city\":\"\"},{\"id\":2,\"name\":\"C\",\"city\":\"D\\\"\"}]}\n");
    wr_demo_out_reset(&out);
    wr_demo_teams_html(&out, t, 2);
    assert_non_null(strstr(out.data, ">A&amp;B</a>"));
    assert_non_null(strstr(out.data, "C</a> (D&quot;)"));
    wr_demo_out_reset(&out);
    wr_demo_error_json(&out, "bad \"x\"");
    assert_string_equal(out.data, "{\"error\":\"bad \\\"x\\\"\"}\n");
    wr_demo_out_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_bounds),   cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_json_bytes),   cmocka_unit_test(test_html),
        cmocka_unit_test(test_clean_text),   cmocka_unit_test(test_form_field),
        cmocka_unit_test(test_json_field),   cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_json_value_bound), cmocka_unit_test(test_parse_show),
        cmocka_unit_test(test_lineup),       cmocka_unit_test(test_prefers_html),
        cmocka_unit_test(test_renderers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
