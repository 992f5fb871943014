/* gunzip over zlib (see ccodecs.h). */
#include "ccodecs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int fail(char *err, size_t cap, const char *what, const char *detail) {
  if (err && cap) snprintf(err, cap, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
  return -1;
}

int ccx_gzip_inflate(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                     char *err, size_t err_cap) {
  if (!out || !out_len || (!in && in_len > 0)) return fail(err, err_cap, "null argument", NULL);
  *out = NULL;
  *out_len = 0;
  z_stream s;
  memset(&s, 0, sizeof s);
  /* 15 + 16: gzip wrapper only (a zlib or raw stream is not a .gz file). */
  if (inflateInit2(&s, 15 + 16) != Z_OK) return fail(err, err_cap, "zlib init failed", s.msg);
  size_t cap = in_len * 4 + 4096, len = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) { inflateEnd(&s); return fail(err, err_cap, "out of memory", NULL); }
  size_t consumed = 0;
  for (;;) {
    /* zlib counts in uInt: feed and drain at most 1 GiB at a time. */
    size_t in_left = in_len - consumed;
    s.next_in = (Bytef *)(in + consumed);
    s.avail_in = (uInt)(in_left > (1u << 30) ? (1u << 30) : in_left);
    if (len == cap) {
      size_t ncap = cap * 2;
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) { free(buf); inflateEnd(&s); return fail(err, err_cap, "out of memory", NULL); }
      buf = nb; cap = ncap;
    }
    size_t room = cap - len;
    s.next_out = buf + len;
    s.avail_out = (uInt)(room > (1u << 30) ? (1u << 30) : room);
    uInt before_in = s.avail_in, before_out = s.avail_out;
    int rc = inflate(&s, Z_NO_FLUSH);
    consumed += before_in - s.avail_in;
    len += before_out - s.avail_out;
    if (rc == Z_STREAM_END) {
      /* Another member may follow (concatenated .gz files); trailing zero padding is ignored. */
      while (consumed < in_len && in[consumed] == 0) consumed++;
      if (consumed >= in_len) break;
      if (inflateReset(&s) != Z_OK) { free(buf); inflateEnd(&s); return fail(err, err_cap, "zlib reset failed", s.msg); }
      continue;
    }
    if (rc == Z_BUF_ERROR && consumed >= in_len && s.avail_out > 0) {
      free(buf); inflateEnd(&s);
      return fail(err, err_cap, "the gzip data is truncated", NULL);
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      char detail[128];
      snprintf(detail, sizeof detail, "%s", s.msg ? s.msg : "zlib error");
      free(buf); inflateEnd(&s);
      return fail(err, err_cap, "the gzip data is corrupt", detail);
    }
  }
  inflateEnd(&s);
  *out = buf;
  *out_len = len;
  return 0;
}
