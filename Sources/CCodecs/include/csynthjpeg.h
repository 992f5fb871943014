/* A small libjpeg-turbo encoder for the synthetic study: 8-bit grayscale in, baseline
 * JPEG out, with an optional COM marker (the study marks every file synthetic there). */
#ifndef CSYNTHJPEG_H
#define CSYNTHJPEG_H
#include <stddef.h>
#include <stdint.h>

/* Encodes `width` x `height` 8-bit grayscale pixels (row-major, `width` bytes per row) at
 * `quality` (1-100). `comment` (NUL-terminated, may be NULL) goes into a COM marker.
 * On success returns 0 and sets *out / *out_len to a malloc'd buffer the caller frees with
 * csynth_jpeg_free. On failure returns -1 and writes a message into `err` (size err_len). */
int csynth_jpeg_encode_gray(const uint8_t *pixels, int width, int height, int quality,
                            const char *comment, uint8_t **out, size_t *out_len,
                            char *err, size_t err_len);

void csynth_jpeg_free(uint8_t *buffer);

#endif
