/*
 * ccodecs — small C wrappers over libjpeg-turbo, libpng and zlib: image decoding for the Data
 * layer, gunzip for `.csv.gz` tables, and the JPEG encoder of the synthetic study.
 *
 * Rules (the same for every function here):
 *  - one prefix, `ccx_`, names `ccx_<format>_<verb>`;
 *  - every function returns 0 on success and -1 on failure, writing a one-line reason into
 *    `err` (at most `errlen` bytes, NUL-terminated; `err` may be NULL);
 *  - library errors never longjmp past these functions and never abort the process;
 *  - every buffer returned through an out-parameter is allocated with malloc, owned by the
 *    caller and released exactly once with ccx_free (the one function that returns nothing).
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

/* ---- JPEG and PNG decoding (Data) ---------------------------------------- */

/* *scale_num: the numerator M of the DCT scale M/8 that libjpeg-turbo will use to decode an
 * image whose longest side is `longest` so that the result's longest side is the smallest not
 * below `target` (8 = full size; never upscales; target <= 0 means full size). */
int ccx_jpeg_scale_for(int longest, int target, int *scale_num, char *err, size_t errlen);

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

/* ---- JPEG encoding (Synth) ------------------------------------------------ */

/* Encodes `width` x `height` 8-bit grayscale pixels (row-major, `width` bytes per row) to a
 * baseline JPEG at `quality` (1-100) with the exact integer DCT (the same bytes on every
 * machine). `comment` (NUL-terminated, may be NULL) goes into a COM marker. */
int ccx_jpeg_encode_gray(const uint8_t *pixels, int width, int height, int quality,
                         const char *comment, uint8_t **out, size_t *out_len,
                         char *err, size_t errlen);

/* ---- gzip (Data: label and metadata files as `.csv.gz` or plain) ---------- */

/* Inflates gzip data (one or several concatenated members) held in memory into *out
 * (*out_len bytes). A zlib or raw deflate stream is not a .gz file and is an error. */
int ccx_gzip_inflate(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                     char *err, size_t errlen);

/* Releases a buffer returned by any function here; NULL is allowed. */
void ccx_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
