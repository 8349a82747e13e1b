#!/usr/bin/env python3
"""Writes weir.ini(5) from README.md's configuration reference.

The README's "Configuration" chapter (up to the next "## " heading) and its
"Limits" chapter are the reference; the man page is generated from them at
build time, so the two cannot drift. Usage:

    readme2man.py README.md OUT.5 VERSION

Markdown handled: "###"/"####" headings, paragraphs, "- " lists (nested by
two spaces), ```fenced``` blocks, pipe tables, `code`, **bold**, *italic*,
[text](link). A table becomes a tagged list: the first column is the tag,
middle columns follow it in the tag line ("header: value"), the last column
is the body; a table row with the wrong number of cells fails the build.
Any other line is running text.
"""
import re
import sys

CHAPTERS = ("Configuration", "Limits")

PREAMBLE = r""".TH WEIR.INI 5 "2026" "weir {version}" "File Formats Manual"
.SH NAME
weir.ini \- configuration file of the weir reverse proxy
.SH SYNOPSIS
.I /etc/weir/weir.ini
.SH DESCRIPTION
.B weir
reads one ini file, by default
.IR /etc/weir/weir.ini ;
.B weir \-t
checks it. This page is generated from the configuration reference of
weir's README; the command line, signals, logs and exit status are in
.BR weir (8).
"""

EPILOGUE = r""".SH FILES
.TP
.I /etc/weir/weir.ini
The configuration read when no
.B \-c
is given.
.TP
.I /usr/share/doc/weir/examples/weir.ini
An annotated example with every key.
.SH SEE ALSO
.BR weir (8),
.BR systemd.service (5)
"""


def chapters(text):
    """The lines of each wanted "## " chapter, in README order."""
    out, keep = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            keep = line[3:].strip() in CHAPTERS
            if keep:
                out.append("# " + line[3:].strip())
            continue
        if keep:
            out.append(line)
    return out


def escape_char(c):
    if c == "\\":
        return "\\e"
    if c == "-":
        return "\\-"
    if ord(c) < 128:
        return c
    return "\\[u%04X]" % ord(c)


def escape(s):
    return "".join(escape_char(c) for c in s)


def inline(s):
    """Markdown inline markup to roff font escapes."""
    out, i = [], 0
    pattern = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])"
                         r"|\[([^\]]+)\]\(([^)]+)\)")
    for m in pattern.finditer(s):
        out.append(escape(s[i:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + escape(m.group(1)) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + inline(m.group(2)) + "\\fR")
        elif m.group(3) is not None:
            out.append("\\fI" + inline(m.group(3)) + "\\fR")
        else:
            label, target = m.group(4), m.group(5)
            out.append(inline(label))
            if not target.startswith("#") and target != label.strip("`"):
                out.append(" (" + escape(target) + ")")
        i = m.end()
    out.append(escape(s[i:]))
    return "".join(out)


def text_line(s):
    """One line of running text: a leading '.' or "'" would be a request."""
    s = inline(s)
    return "\\&" + s if s[:1] in (".", "'") else s


def cells(line):
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def table(rows):
    header, body = cells(rows[0]), [cells(r) for r in rows[2:]]
    out = []
    for row in body:
        if len(row) != len(header):
            raise SystemExit("readme2man: table row has %d cells, header %d: %r"
                             % (len(row), len(header), row))
        tag = "\\fB" + inline(row[0]).replace("\\fR", "\\fB") + "\\fR"
        extra = ["%s: %s" % (escape(h), inline(c)) for h, c in zip(header[1:-1], row[1:-1])
                 if c]
        if extra:
            tag += " (" + "; ".join(extra) + ")"
        out += [".TP", tag, text_line(row[-1]) if row[-1] else "\\(em"]
    return out


def convert(lines):
    out, i, depth = [], 0, 0

    def close_lists():
        nonlocal depth
        while depth > 1:
            out.append(".RE")
            depth -= 1
        depth = 0

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        if line.startswith("# "):
            close_lists()
            out += [".SH " + escape(line[2:].upper())]
            i += 1
        elif re.match(r"#{3,4} ", line):
            close_lists()
            out += [".SS " + inline(line.split(" ", 1)[1])]
            i += 1
        elif stripped.startswith("```"):
            close_lists()
            out += [".PP", ".RS 4", ".nf"]
            i += 1
            while not lines[i].strip().startswith("```"):
                code = escape(lines[i])
                out.append("\\&" + code if code[:1] in (".", "'") else code)
                i += 1
            out += [".fi", ".RE"]
            i += 1
        elif stripped.startswith("|"):
            close_lists()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += table(rows)
        elif re.match(r" *- ", line):
            level = (len(line) - len(line.lstrip())) // 2 + 1
            while depth > level:
                out.append(".RE")
                depth -= 1
            if depth and level > depth:
                out.append(".RS")
            depth = level
            item = [stripped[2:]]
            i += 1
            indent = " " * (2 * level)
            while (i < len(lines) and lines[i].startswith(indent) and
                   not re.match(r" *- ", lines[i]) and lines[i].strip()):
                item.append(lines[i].strip())
                i += 1
            out += [".IP \\(bu 2"] + [text_line(s) for s in item]
        else:
            close_lists()
            para = []
            while (i < len(lines) and lines[i].strip() and
                   not re.match(r"(#|```| *- | *\|)", lines[i])):
                para.append(lines[i].strip())
                i += 1
            out += [".PP"] + [text_line(s) for s in para]
    close_lists()
    return out


def main():
    if len(sys.argv) != 4:
        raise SystemExit("usage: readme2man.py README.md OUT.5 VERSION")
    readme, dest, version = sys.argv[1:]
    with open(readme, encoding="utf-8") as f:
        lines = chapters(f.read())
    if not lines:
        raise SystemExit("readme2man: no %s chapter in %s" % (" or ".join(CHAPTERS), readme))
    page = PREAMBLE.format(version=version) + "\n".join(convert(lines)) + "\n" + EPILOGUE
    with open(dest, "w", encoding="ascii") as f:
        f.write(page)


if __name__ == "__main__":
    main()
