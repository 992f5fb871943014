/*
 * cxt_dicom — a C ABI over GDCM for reading one DICOM image.
 *
 * Built into its own shared library (libcxt_dicom.so) that the Swift side loads with
 * dlopen only when a DICOM file is read, so a machine without GDCM still reads JPEG/PNG.
 * Same rules as cxt.h: a status return (0 ok, -1 failure), a reason written into `err`,
 * no C++ exception crosses the boundary, buffers freed with cxt_dicom_free.
 */
#ifndef CXT_DICOM_H
#define CXT_DICOM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t width, height, frames;
  int32_t bits_allocated, bits_stored, is_signed, samples_per_pixel;
  double slope, intercept;          /* Modality LUT (1, 0 when absent) */
  char photometric[32];             /* e.g. MONOCHROME1, MONOCHROME2 */
  char transfer_syntax[96];         /* GDCM's name of the transfer syntax */
} cxt_dicom_info;

/* Reads and decompresses the first frame. `*pixels` receives width*height samples of
 * bits_allocated bits (8 -> uint8/int8, 16 -> uint16/int16, 32 -> uint32/int32; native
 * byte order), with samples_per_pixel interleaved samples each. */
int cxt_dicom_read(const char *path, cxt_dicom_info *info, void **pixels, size_t *nbytes,
                   char *err, size_t errlen);
void cxt_dicom_free(void *p);

/* Reads only the header, up to View Position (0018,5101) (never the pixel data), and writes
 * its value into `out` (NUL-terminated, surrounding blanks removed, as stored: e.g. "PA", "AP",
 * "LL"); an empty string when the attribute is absent or empty. -1 when the file is not
 * readable DICOM or `out` is too small. Added after cxt_dicom_read: callers look it up with
 * dlsym and must cope with an older library that lacks it. */
int cxt_dicom_read_view_position(const char *path, char *out, size_t outlen, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
