/* A small gunzip over zlib, so label and metadata files may be read as `.csv.gz` or plain. */
#ifndef CGZIP_H
#define CGZIP_H
#include <stddef.h>
#include <stdint.h>

/* Inflates gzip data (one or several concatenated members) held in memory.
 * On success returns 0 and sets *out (malloc'd; free with cgz_free) and *out_len.
 * On failure returns -1 and writes a message into err (err_cap bytes). */
int cgz_inflate(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                char *err, size_t err_cap);
void cgz_free(void *p);
#endif
