/*
 * mime: Content-Type by file name extension (see mime.h).
 */
#include "weir/mime.h"

struct mime_entry {
    const char *ext;
    size_t ext_len; /* known at compile time: the lookup runs per request */
    struct wr_str type;
};
#define MIME(ext, type) {ext, sizeof(ext) - 1, {type, sizeof(type) - 1}}

static const struct mime_entry mime_types[] = {
    /* text: charset=utf-8 */
    MIME("html", "text/html; charset=utf-8"),
    MIME("htm", "text/html; charset=utf-8"),
    MIME("xhtml", "application/xhtml+xml"),
    MIME("css", "text/css; charset=utf-8"),
    MIME("js", "text/javascript; charset=utf-8"),
    MIME("mjs", "text/javascript; charset=utf-8"),
    MIME("txt", "text/plain; charset=utf-8"),
    MIME("md", "text/markdown; charset=utf-8"),
    MIME("csv", "text/csv; charset=utf-8"),
    MIME("ics", "text/calendar; charset=utf-8"),
    MIME("vtt", "text/vtt; charset=utf-8"),
    MIME("yaml", "application/yaml"),
    MIME("yml", "application/yaml"),
    /* data */
    MIME("json", "application/json"),
    MIME("map", "application/json"),
    MIME("jsonld", "application/ld+json"),
    MIME("webmanifest", "application/manifest+json"),
    MIME("xml", "application/xml"),
    MIME("rss", "application/rss+xml"),
    MIME("atom", "application/atom+xml"),
    MIME("wasm", "application/wasm"),
    MIME("pdf", "application/pdf"),
    MIME("epub", "application/epub+zip"),
    MIME("rtf", "application/rtf"),
    /* images */
    MIME("svg", "image/svg+xml"),
    MIME("png", "image/png"),
    MIME("apng", "image/apng"),
    MIME("jpg", "image/jpeg"),
    MIME("jpeg", "image/jpeg"),
    MIME("gif", "image/gif"),
    MIME("webp", "image/webp"),
    MIME("avif", "image/avif"),
    MIME("jxl", "image/jxl"),
    MIME("bmp", "image/bmp"),
    MIME("tif", "image/tiff"),
    MIME("tiff", "image/tiff"),
    MIME("ico", "image/x-icon"),
    /* fonts */
    MIME("woff", "font/woff"),
    MIME("woff2", "font/woff2"),
    MIME("ttf", "font/ttf"),
    MIME("otf", "font/otf"),
    MIME("eot", "application/vnd.ms-fontobject"),
    /* audio and video */
    MIME("mp4", "video/mp4"),
    MIME("m4v", "video/mp4"),
    MIME("webm", "video/webm"),
    MIME("ogv", "video/ogg"),
    MIME("mov", "video/quicktime"),
    MIME("mp3", "audio/mpeg"),
    MIME("m4a", "audio/mp4"),
    MIME("ogg", "audio/ogg"),
    MIME("oga", "audio/ogg"),
    MIME("opus", "audio/ogg"),
    MIME("wav", "audio/wav"),
    MIME("flac", "audio/flac"),
    /* archives */
    MIME("zip", "application/zip"),
    MIME("gz", "application/gzip"),
    MIME("tar", "application/x-tar"),
    MIME("bz2", "application/x-bzip2"),
    MIME("xz", "application/x-xz"),
    MIME("zst", "application/zstd"),
    MIME("7z", "application/x-7z-compressed"),
};

struct wr_str wr_mime_type(struct wr_str name)
{
    static const struct wr_str fallback = {"application/octet-stream", 24};
    size_t dot = name.len;
    while (dot > 0 && name.ptr[dot - 1] != '.' && name.ptr[dot - 1] != '/')
        dot--;
    if (dot == 0 || name.ptr[dot - 1] != '.')
        return fallback;
    struct wr_str ext = {name.ptr + dot, name.len - dot};
    for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++) {
        if (ext.len == mime_types[i].ext_len &&
            wr_str_eq_nocase(ext, (struct wr_str){mime_types[i].ext, mime_types[i].ext_len}))
            return mime_types[i].type;
    }
    return fallback;
}
