/* Grayscale JPEG encoder over libjpeg-turbo (see ccodecs.h). Errors longjmp back here
 * instead of libjpeg's default exit(). */
#include "ccodecs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

struct ccx_encode_error {
  struct jpeg_error_mgr base;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void ccx_encode_error_exit(j_common_ptr cinfo) {
  struct ccx_encode_error *e = (struct ccx_encode_error *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

static void ccx_encode_set_error(char *err, size_t err_len, const char *message) {
  if (err && err_len > 0) snprintf(err, err_len, "%s", message);
}

int ccx_jpeg_encode_gray(const uint8_t *pixels, int width, int height, int quality,
                         const char *comment, uint8_t **out, size_t *out_len,
                         char *err, size_t err_len) {
  if (!pixels || !out || !out_len) { ccx_encode_set_error(err, err_len, "null argument"); return -1; }
  if (width <= 0 || height <= 0 || width > 65500 || height > 65500) {
    ccx_encode_set_error(err, err_len, "image size must be 1..65500 on each side"); return -1;
  }
  if (quality < 1 || quality > 100) { ccx_encode_set_error(err, err_len, "quality must be 1..100"); return -1; }
  *out = NULL;
  *out_len = 0;
  struct jpeg_compress_struct cinfo;
  struct ccx_encode_error jerr;
  /* libjpeg's memory destination reallocates through &mem; its address escapes, so the
   * error path below reads the current buffer through a volatile access. */
  unsigned char *mem = NULL;
  unsigned long size = 0;
  cinfo.err = jpeg_std_error(&jerr.base);
  jerr.base.error_exit = ccx_encode_error_exit;
  if (setjmp(jerr.jump)) {
    ccx_encode_set_error(err, err_len, jerr.message);
    jpeg_destroy_compress(&cinfo);
    free(*(unsigned char *volatile *)&mem);
    return -1;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &mem, &size);
  cinfo.image_width = (JDIMENSION)width;
  cinfo.image_height = (JDIMENSION)height;
  cinfo.input_components = 1;
  cinfo.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  cinfo.dct_method = JDCT_ISLOW; /* the exact integer DCT: same bytes on every machine */
  jpeg_start_compress(&cinfo, TRUE);
  if (comment && comment[0]) {
    jpeg_write_marker(&cinfo, JPEG_COM, (const JOCTET *)comment, (unsigned int)strlen(comment));
  }
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * (size_t)width);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  *out = mem;
  *out_len = (size_t)size;
  return 0;
}
