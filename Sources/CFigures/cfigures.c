/* cfigures: SVG -> PDF through librsvg + cairo, loaded with dlopen (see cfigures.h for why). */
#include "cfigures.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few declarations used, as the libraries' headers give them (librsvg 2.52+, cairo 1.16+,
 * GLib 2): declared here so that building cxr needs no -dev package. */
typedef struct { unsigned int domain; int code; char *message; } GErrorLike;
typedef struct { double x, y, width, height; } RsvgRectangleLike;
typedef int cairo_status_t;
typedef cairo_status_t (*cairo_write_func_t)(void *closure, const unsigned char *data, unsigned int length);
enum { CAIRO_STATUS_SUCCESS = 0, CAIRO_STATUS_WRITE_ERROR = 11 };
enum { CAIRO_PDF_METADATA_TITLE = 0, CAIRO_PDF_METADATA_CREATOR = 4 };
enum { CAIRO_PDF_VERSION_1_5 = 1 };

static struct {
  void *(*rsvg_handle_new_from_data)(const uint8_t *, size_t, GErrorLike **);
  int (*rsvg_handle_get_intrinsic_size_in_pixels)(void *, double *, double *);
  int (*rsvg_handle_render_document)(void *, void *, const RsvgRectangleLike *, GErrorLike **);
  void (*g_object_unref)(void *);
  void (*g_error_free)(GErrorLike *);
  void *(*cairo_pdf_surface_create_for_stream)(cairo_write_func_t, void *, double, double);
  void (*cairo_pdf_surface_set_metadata)(void *, int, const char *);
  void (*cairo_pdf_surface_restrict_to_version)(void *, int);
  void *(*cairo_create)(void *);
  void (*cairo_destroy)(void *);
  void (*cairo_show_page)(void *);
  void (*cairo_surface_finish)(void *);
  cairo_status_t (*cairo_surface_status)(void *);
  void (*cairo_surface_destroy)(void *);
  const char *(*cairo_status_to_string)(cairo_status_t);
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static void *open_lib(const char *name) {
  void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!h && !load_error[0])
    snprintf(load_error, sizeof load_error,
             "cannot load %s (%s): PDF figures need librsvg and cairo (Debian: apt-get install librsvg2-2)",
             name, dlerror());
  return h;
}

#define SYM(lib, name)                                                                            \
  do {                                                                                            \
    *(void **)(&api.name) = lib ? dlsym(lib, #name) : NULL;                                       \
    if (!api.name && !load_error[0])                                                              \
      snprintf(load_error, sizeof load_error,                                                     \
               "%s not found: PDF figures need librsvg >= 2.52 and cairo >= 1.16 (Debian 12's librsvg2-2)", #name); \
  } while (0)

static void load(void) {
  void *rsvg = open_lib("librsvg-2.so.2");
  void *gobject = open_lib("libgobject-2.0.so.0");
  void *glib = open_lib("libglib-2.0.so.0");
  void *cairo = open_lib("libcairo.so.2");
  SYM(rsvg, rsvg_handle_new_from_data);
  SYM(rsvg, rsvg_handle_get_intrinsic_size_in_pixels);
  SYM(rsvg, rsvg_handle_render_document);
  SYM(gobject, g_object_unref);
  SYM(glib, g_error_free);
  SYM(cairo, cairo_pdf_surface_create_for_stream);
  SYM(cairo, cairo_pdf_surface_set_metadata);
  SYM(cairo, cairo_pdf_surface_restrict_to_version);
  SYM(cairo, cairo_create);
  SYM(cairo, cairo_destroy);
  SYM(cairo, cairo_show_page);
  SYM(cairo, cairo_surface_finish);
  SYM(cairo, cairo_surface_status);
  SYM(cairo, cairo_surface_destroy);
  SYM(cairo, cairo_status_to_string);
}

int cfg_pdf_available(char *err, size_t errlen) {
  pthread_once(&load_once, load);
  if (load_error[0]) { set_err(err, errlen, "%s", load_error); return 0; }
  return 1;
}

typedef struct { uint8_t *data; size_t len, cap; int failed; } Buffer;

static cairo_status_t append(void *closure, const unsigned char *data, unsigned int length) {
  Buffer *b = closure;
  if (b->len + length > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 65536;
    while (cap < b->len + length) cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) { b->failed = 1; return CAIRO_STATUS_WRITE_ERROR; }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, length);
  b->len += length;
  return CAIRO_STATUS_SUCCESS;
}

int cfg_svg_to_pdf(const char *svg, size_t len, const char *title, const char *creator,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen) {
  *out = NULL;
  *outlen = 0;
  if (!cfg_pdf_available(err, errlen)) return -1;
  GErrorLike *gerr = NULL;
  void *handle = api.rsvg_handle_new_from_data((const uint8_t *)svg, len, &gerr);
  if (!handle) {
    set_err(err, errlen, "librsvg cannot read the SVG: %s", gerr && gerr->message ? gerr->message : "unknown error");
    if (gerr) api.g_error_free(gerr);
    return -1;
  }
  double width = 0, height = 0;
  if (!api.rsvg_handle_get_intrinsic_size_in_pixels(handle, &width, &height) || width <= 0 || height <= 0) {
    set_err(err, errlen, "the SVG has no width and height in absolute units");
    api.g_object_unref(handle);
    return -1;
  }
  Buffer buffer = {0};
  void *surface = api.cairo_pdf_surface_create_for_stream(append, &buffer, width, height);
  api.cairo_pdf_surface_restrict_to_version(surface, CAIRO_PDF_VERSION_1_5);
  if (title) api.cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, title);
  if (creator) api.cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, creator);
  void *cr = api.cairo_create(surface);
  RsvgRectangleLike viewport = {0, 0, width, height};
  int rendered = api.rsvg_handle_render_document(handle, cr, &viewport, &gerr);
  if (rendered) api.cairo_show_page(cr);
  api.cairo_destroy(cr);
  api.cairo_surface_finish(surface);
  cairo_status_t status = api.cairo_surface_status(surface);
  api.cairo_surface_destroy(surface);
  api.g_object_unref(handle);
  if (!rendered) {
    set_err(err, errlen, "librsvg cannot render the SVG: %s", gerr && gerr->message ? gerr->message : "unknown error");
    if (gerr) api.g_error_free(gerr);
    free(buffer.data);
    return -1;
  }
  if (status != CAIRO_STATUS_SUCCESS || buffer.failed) {
    set_err(err, errlen, "cairo cannot write the PDF: %s", buffer.failed ? "out of memory" : api.cairo_status_to_string(status));
    free(buffer.data);
    return -1;
  }
  *out = buffer.data;
  *outlen = buffer.len;
  return 0;
}

void cfg_free(void *p) { free(p); }
