/*
 * cfigures — an SVG figure rendered to a one-page vector PDF by librsvg and cairo.
 *
 * Both libraries are loaded with dlopen on first use (librsvg-2.so.2, libcairo.so.2,
 * libgobject-2.0.so.0: Debian's librsvg2-2), so cxr links and runs without them (the GPU
 * bundle does); a machine without them gets -1 and a reason naming the package.
 *
 * As ccodecs: every function returns 0 on success and -1 on failure, writing a one-line reason
 * into `err` (at most `errlen` bytes, NUL-terminated). Buffers returned through `out` are
 * allocated with malloc and released with cfg_free.
 */
#ifndef CFIGURES_H
#define CFIGURES_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Renders the SVG document `svg` (UTF-8, `len` bytes) onto one PDF page of the SVG's own size
 * (its width/height in CSS pixels become PDF points at 72 per inch), text as embedded font
 * subsets, lines as vectors. `title` and `creator` (may be NULL) go into the PDF's metadata. */
int cfg_svg_to_pdf(const char *svg, size_t len, const char *title, const char *creator,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* 1 when librsvg and cairo can be loaded, else 0 with the reason in `err`. */
int cfg_pdf_available(char *err, size_t errlen);

void cfg_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
