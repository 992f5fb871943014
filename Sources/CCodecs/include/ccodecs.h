/*
 * ccodecs — small C wrappers over libjpeg-turbo and libpng for the Data layer.
 *
 * Every function returns 0 on success and -1 on failure, writing a one-line reason into
 * `err` (at most `errlen` bytes, NUL-terminated). Library errors never longjmp past these
 * functions and never abort the process. Pixel buffers returned through `out` are
 * allocated with malloc and released with ccx_free.
 */
#ifndef CCODECS_H
#define CCODECS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Image size and colour layout read from a JPEG header, without decoding. */
int ccx_jpeg_info(const uint8_t *data, size_t len, int *width, int *height, int *components,
                  char *err, size_t errlen);

/* The numerator M of the DCT scale M/8 that libjpeg-turbo will use to decode an image whose
 * longest side is `longest` so that the result's longest side is the smallest not below
 * `target` (8 = full size; never upscales; target <= 0 means full size). */
int ccx_jpeg_scale_for(int longest, int target);

/* Decodes to 8-bit grayscale (colour JPEGs give their luma), with DCT-domain downscaling by
 * scale_num/8 (1..8). Truncated or corrupt data is an error, not a grey-filled image. */
int ccx_jpeg_decode_gray(const uint8_t *data, size_t len, int scale_num, uint8_t **out,
                         int *width, int *height, char *err, size_t errlen);

/* Decodes a PNG to grayscale: `*bits` is 8 (one byte per pixel) or 16 (one uint16 per
 * pixel, native byte order). Palette and low-bit images expand to 8 bits, alpha is dropped,
 * colour is converted to luma with libpng's default (ITU-R 709) weights. */
int ccx_png_decode_gray(const uint8_t *data, size_t len, void **out, int *width, int *height,
                        int *bits, char *err, size_t errlen);

/* Writes an 8-bit grayscale PNG (rows top to bottom, `width` bytes each). */
int ccx_png_write_gray8(const char *path, const uint8_t *pixels, int width, int height,
                        char *err, size_t errlen);

/* Writes a PNG of `channels` (1: gray, 3: RGB, interleaved) samples of `bits` (8, or 16 in
 * native byte order), rows top to bottom. */
int ccx_png_write(const char *path, const void *pixels, int width, int height, int channels, int bits,
                  char *err, size_t errlen);

void ccx_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
