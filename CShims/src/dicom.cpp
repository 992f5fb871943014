// C ABI over GDCM (see cxt_dicom.h): read one DICOM image, decompressing any transfer
// syntax GDCM supports (uncompressed, JPEG baseline/lossless, JPEG-LS, JPEG 2000, RLE).
#include "cxt_dicom.h"

#include <gdcmImage.h>
#include <gdcmImageReader.h>
#include <gdcmPhotometricInterpretation.h>
#include <gdcmPixelFormat.h>
#include <gdcmReader.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <ostream>
#include <set>
#include <streambuf>
#include <string>
#include <vector>

namespace {
// GDCM reports some damage only as a warning on a global stream (e.g. "Incomplete Pixel
// Data found" for a truncated file, whose missing pixels it fills in). We route its
// warning/error streams into a per-thread buffer so that each read sees its own messages
// and nothing is printed on stderr.
thread_local std::string gdcm_messages;
struct ThreadLocalBuffer : std::streambuf {
  int overflow(int c) override {
    if (c != traits_type::eof()) gdcm_messages.push_back(static_cast<char>(c));
    return c;
  }
  std::streamsize xsputn(const char *s, std::streamsize n) override {
    gdcm_messages.append(s, static_cast<size_t>(n));
    return n;
  }
};
void capture_gdcm_messages() {
  static std::once_flag once;
  std::call_once(once, [] {
    static ThreadLocalBuffer buffer;
    static std::ostream stream(&buffer);
    gdcm::Trace::SetWarningStream(stream);
    gdcm::Trace::SetErrorStream(stream);
    gdcm::Trace::SetDebug(false);
  });
}

void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen > 0) std::snprintf(err, errlen, "%s", msg);
}

int read_dicom(const char *path, cxt_dicom_info *info, void **pixels, size_t *nbytes, char *err,
               size_t errlen) {
  capture_gdcm_messages();
  gdcm_messages.clear();
  gdcm::ImageReader reader;
  reader.SetFileName(path);
  if (!reader.Read()) {
    set_err(err, errlen, "not a readable DICOM image (missing pixel data, truncated or not DICOM)");
    return -1;
  }
  if (gdcm_messages.find("Incomplete Pixel Data") != std::string::npos) {
    set_err(err, errlen, "truncated pixel data (the file ends before all pixels)");
    return -1;
  }
  const gdcm::Image &image = reader.GetImage();
  const unsigned int *dims = image.GetDimensions();
  const gdcm::PixelFormat &pf = image.GetPixelFormat();
  std::memset(info, 0, sizeof *info);
  info->width = (int32_t)dims[0];
  info->height = (int32_t)dims[1];
  info->frames = image.GetNumberOfDimensions() > 2 ? (int32_t)dims[2] : 1;
  info->bits_allocated = pf.GetBitsAllocated();
  info->bits_stored = pf.GetBitsStored();
  info->is_signed = pf.GetPixelRepresentation() ? 1 : 0;
  info->samples_per_pixel = pf.GetSamplesPerPixel();
  info->slope = image.GetSlope();
  info->intercept = image.GetIntercept();
  const char *pi = gdcm::PhotometricInterpretation::GetPIString(image.GetPhotometricInterpretation());
  std::string photometric = pi ? pi : "";
  while (!photometric.empty() && photometric.back() == ' ') photometric.pop_back();  // DICOM pads to even length
  std::snprintf(info->photometric, sizeof info->photometric, "%s", photometric.c_str());
  const char *ts = gdcm::TransferSyntax::GetTSString(image.GetTransferSyntax());
  std::snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s", ts ? ts : "");
  if (info->width <= 0 || info->height <= 0) {
    set_err(err, errlen, "DICOM image has no rows or columns");
    return -1;
  }
  const unsigned long total = image.GetBufferLength();
  const size_t frame = (size_t)info->width * info->height * info->samples_per_pixel * ((info->bits_allocated + 7) / 8);
  if (total < frame) {
    set_err(err, errlen, "DICOM pixel data is shorter than rows x columns says (truncated?)");
    return -1;
  }
  std::vector<char> buffer(total);
  if (!image.GetBuffer(buffer.data())) {
    set_err(err, errlen, "cannot decompress the DICOM pixel data (corrupt or unsupported transfer syntax)");
    return -1;
  }
  void *out = std::malloc(frame);
  if (!out) {
    set_err(err, errlen, "out of memory reading DICOM");
    return -1;
  }
  std::memcpy(out, buffer.data(), frame);
  *pixels = out;
  *nbytes = frame;
  return 0;
}
int read_view_position(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  if (!out || outlen == 0) {
    set_err(err, errlen, "no output buffer for the View Position");
    return -1;
  }
  out[0] = 0;
  capture_gdcm_messages();
  gdcm_messages.clear();
  const gdcm::Tag viewPosition(0x0018, 0x5101);
  gdcm::Reader reader;
  reader.SetFileName(path);
  // Stops at the first element past (0018,5101): the header only, never the pixel data.
  if (!reader.ReadSelectedTags(std::set<gdcm::Tag>{viewPosition})) {
    set_err(err, errlen, "not a readable DICOM file (truncated header or not DICOM)");
    return -1;
  }
  const gdcm::DataSet &ds = reader.GetFile().GetDataSet();
  if (!ds.FindDataElement(viewPosition)) return 0;
  const gdcm::ByteValue *bv = ds.GetDataElement(viewPosition).GetByteValue();
  if (!bv || bv->GetLength() == 0) return 0;
  std::string value(bv->GetPointer(), bv->GetLength());
  // CS values are padded with a space to even length; some writers pad with NUL.
  const char *blank = " \t\r\n";
  while (!value.empty() && (value.back() == 0 || std::strchr(blank, value.back()))) value.pop_back();
  size_t start = 0;
  while (start < value.size() && std::strchr(blank, value[start])) ++start;
  value.erase(0, start);
  if (value.size() + 1 > outlen) {
    set_err(err, errlen, "the View Position value is longer than the output buffer");
    return -1;
  }
  std::memcpy(out, value.c_str(), value.size() + 1);
  return 0;
}
}  // namespace

extern "C" int cxt_dicom_read_view_position(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  try {
    return read_view_position(path, out, outlen, err, errlen);
  } catch (const std::exception &e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error in GDCM");
  }
  if (out && outlen > 0) out[0] = 0;
  return -1;
}

extern "C" int cxt_dicom_read(const char *path, cxt_dicom_info *info, void **pixels, size_t *nbytes,
                              char *err, size_t errlen) {
  try {
    return read_dicom(path, info, pixels, nbytes, err, errlen);
  } catch (const std::exception &e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error in GDCM");
  }
  return -1;
}

extern "C" void cxt_dicom_free(void *p) { std::free(p); }
