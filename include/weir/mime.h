/*
 * mime: the Content-Type of a file by its name's extension, for static
 * answers and `return_file` bodies. Layer 0: pure, a table.
 */
#ifndef WEIR_MIME_H
#define WEIR_MIME_H

#include "weir/str.h"

/* Content-Type for a file name by its extension (case ignored);
 * application/octet-stream for unknown ones. The text is static
 * (NUL-terminated too); its length comes with it, so no answer measures
 * it. */
struct wr_str wr_mime_type(struct wr_str name);

#endif
