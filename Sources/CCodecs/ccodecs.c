/* C wrappers over libjpeg-turbo and libpng (see ccodecs.h). */
#include "ccodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen > 0) {
    snprintf(err, errlen, "%s", msg);
  }
}

void ccx_free(void *p) { free(p); }

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int warned; /* libjpeg reports truncated/corrupt data as warnings: we treat them as errors */
} ccx_jpeg_error;

static void ccx_jpeg_error_exit(j_common_ptr cinfo) {
  ccx_jpeg_error *e = (ccx_jpeg_error *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

/* Warnings that mean pixels are missing or wrong (libjpeg would fill them with grey). Others
 * (extraneous bytes between markers, an odd JFIF version, an ICC quirk) leave the image
 * intact and are ignored, as PIL does. */
static int ccx_jpeg_damaging(int code) {
  return code == JWRN_JPEG_EOF || code == JWRN_HUFF_BAD_CODE || code == JWRN_ARITH_BAD_CODE ||
         code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC || code == JWRN_NOT_SEQUENTIAL;
}

static void ccx_jpeg_emit(j_common_ptr cinfo, int level) {
  ccx_jpeg_error *e = (ccx_jpeg_error *)cinfo->err;
  if (level < 0 && !e->warned && ccx_jpeg_damaging(cinfo->err->msg_code)) {
    e->warned = 1;
    (*cinfo->err->format_message)(cinfo, e->message);
  }
  if (level < 0) cinfo->err->num_warnings++;
}

int ccx_jpeg_scale_for(int longest, int target, int *scale_num, char *err, size_t errlen) {
  if (!scale_num) { set_err(err, errlen, "null argument"); return -1; }
  *scale_num = 8;
  if (target <= 0 || longest <= target) return 0;
  for (int m = 1; m < 8; m++) {
    /* libjpeg's output size is ceil(size * m / 8) */
    long scaled = ((long)longest * m + 7) / 8;
    if (scaled >= target) { *scale_num = m; return 0; }
  }
  return 0;
}

int ccx_jpeg_info(const uint8_t *data, size_t len, int *width, int *height, int *components,
                  char *err, size_t errlen) {
  struct jpeg_decompress_struct cinfo;
  ccx_jpeg_error jerr;
  memset(&jerr, 0, sizeof jerr);
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = ccx_jpeg_error_exit;
  jerr.pub.emit_message = ccx_jpeg_emit;
  if (setjmp(jerr.jump)) {
    set_err(err, errlen, jerr.message);
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  *width = (int)cinfo.image_width;
  *height = (int)cinfo.image_height;
  *components = cinfo.num_components;
  jpeg_destroy_decompress(&cinfo);
  return 0;
}

int ccx_jpeg_decode_gray(const uint8_t *data, size_t len, int scale_num, uint8_t **out,
                         int *width, int *height, char *err, size_t errlen) {
  struct jpeg_decompress_struct cinfo;
  ccx_jpeg_error jerr;
  uint8_t *volatile pixels = NULL;
  memset(&jerr, 0, sizeof jerr);
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = ccx_jpeg_error_exit;
  jerr.pub.emit_message = ccx_jpeg_emit;
  if (setjmp(jerr.jump)) {
    set_err(err, errlen, jerr.message);
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    set_err(err, errlen, "CMYK JPEGs are not supported; convert the image to grayscale");
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  if (scale_num < 1 || scale_num > 8) scale_num = 8;
  cinfo.scale_num = (unsigned int)scale_num;
  cinfo.scale_denom = 8;
  cinfo.out_color_space = JCS_GRAYSCALE;
  cinfo.dct_method = JDCT_ISLOW;
  jpeg_start_decompress(&cinfo);
  const size_t w = cinfo.output_width, h = cinfo.output_height;
  pixels = (uint8_t *)malloc(w * h);
  if (!pixels) {
    set_err(err, errlen, "out of memory decoding JPEG");
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[8];
    int n = 0;
    for (; n < 8 && cinfo.output_scanline + n < cinfo.output_height; n++)
      rows[n] = pixels + (size_t)(cinfo.output_scanline + n) * w;
    jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (jerr.warned) {
    char msg[JMSG_LENGTH_MAX + 64];
    snprintf(msg, sizeof msg, "corrupt or truncated JPEG data (%s)", jerr.message);
    set_err(err, errlen, msg);
    free(pixels);
    return -1;
  }
  *out = pixels;
  *width = (int)w;
  *height = (int)h;
  return 0;
}

/* ---- PNG ----------------------------------------------------------------- */

typedef struct {
  const uint8_t *data;
  size_t len, pos;
  char message[256];
  int warned;
} ccx_png_src;

static void ccx_png_read(png_structp png, png_bytep dst, png_size_t n) {
  ccx_png_src *s = (ccx_png_src *)png_get_io_ptr(png);
  if (s->pos + n > s->len) png_error(png, "truncated PNG data (file ends early)");
  memcpy(dst, s->data + s->pos, n);
  s->pos += n;
}

static void ccx_png_error_fn(png_structp png, png_const_charp msg) {
  char *buf = (char *)png_get_error_ptr(png);
  if (buf) snprintf(buf, 256, "%s", msg);
  png_longjmp(png, 1);
}

static void ccx_png_warn_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int ccx_png_decode_gray(const uint8_t *data, size_t len, void **out, int *width, int *height,
                        int *bits, char *err, size_t errlen) {
  char message[256] = "corrupt PNG";
  ccx_png_src src = {data, len, 0, {0}, 0};
  void *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  if (len < 8 || png_sig_cmp(data, 0, 8) != 0) {
    set_err(err, errlen, "not a PNG file (bad signature)");
    return -1;
  }
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, ccx_png_error_fn, ccx_png_warn_fn);
  if (!png) { set_err(err, errlen, "cannot create PNG reader"); return -1; }
  png_infop info = png_create_info_struct(png);
  if (!info) { png_destroy_read_struct(&png, NULL, NULL); set_err(err, errlen, "cannot create PNG reader"); return -1; }
  if (setjmp(png_jmpbuf(png))) {
    set_err(err, errlen, message);
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    return -1;
  }
  png_set_read_fn(png, &src, ccx_png_read);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (color & PNG_COLOR_MASK_ALPHA || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
  if (color == PNG_COLOR_TYPE_RGB || color == PNG_COLOR_TYPE_RGB_ALPHA || color == PNG_COLOR_TYPE_PALETTE)
    png_set_rgb_to_gray_fixed(png, 1, -1, -1);
  const int out_bits = depth == 16 ? 16 : 8;
  if (out_bits == 16) {
    /* PNG stores big-endian samples; hand back native uint16 */
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe == 1) png_set_swap(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  size_t bpp = (size_t)out_bits / 8;
  if (rowbytes != (size_t)w * bpp) png_error(png, "unexpected PNG row layout after conversion to grayscale");
  pixels = malloc(rowbytes * h);
  rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
  if (!pixels || !rows) png_error(png, "out of memory decoding PNG");
  for (png_uint_32 y = 0; y < h; y++) rows[y] = (png_bytep)pixels + (size_t)y * rowbytes;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  *out = pixels;
  *width = (int)w;
  *height = (int)h;
  *bits = out_bits;
  return 0;
}

int ccx_png_write_gray8(const char *path, const uint8_t *pixels, int width, int height,
                        char *err, size_t errlen) {
  return ccx_png_write(path, pixels, width, height, 1, 8, err, errlen);
}

int ccx_png_write(const char *path, const void *pixels, int width, int height, int channels, int bits,
                  char *err, size_t errlen) {
  char message[256] = "cannot write PNG";
  if ((channels != 1 && channels != 3) || (bits != 8 && bits != 16) || width <= 0 || height <= 0) {
    set_err(err, errlen, "unsupported PNG layout (1 or 3 channels of 8 or 16 bits, positive size)");
    return -1;
  }
  FILE *volatile fp = fopen(path, "wb");
  if (!fp) {
    char msg[512];
    snprintf(msg, sizeof msg, "cannot open %s for writing", path);
    set_err(err, errlen, msg);
    return -1;
  }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, ccx_png_error_fn, ccx_png_warn_fn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    if (png) png_destroy_write_struct(&png, NULL);
    fclose(fp);
    set_err(err, errlen, "cannot create PNG writer");
    return -1;
  }
  if (setjmp(png_jmpbuf(png))) {
    set_err(err, errlen, message);
    png_destroy_write_struct(&png, &info);
    fclose(fp);
    return -1;
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bits,
               channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  /* PNG stores 16-bit samples big-endian; the caller's are in native order. */
  if (bits == 16) {
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe == 1) png_set_swap(png);
  }
  size_t row = (size_t)width * (size_t)channels * (size_t)(bits / 8);
  for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)pixels + (size_t)y * row);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  if (fclose(fp) != 0) {
    set_err(err, errlen, "error closing the PNG file (disk full?)");
    return -1;
  }
  return 0;
}
