import Foundation
import TestSupport

/// Real image files written by the reference Python (PIL, pydicom, numpy), with the
/// reference decodes of each: the fixtures of the Imaging/Preprocess/Loader/Cache tests.
enum ImagingFixtures {
  struct Set {
    let dir: URL
    /// Per file: reference pixels (row-major), width, height, plus extras.
    let reference: [String: [String: Any]]
    func url(_ name: String) -> URL { dir.appendingPathComponent(name) }
    func pixels(_ name: String) -> [Double] { (reference[name]!["pixels"] as! [NSNumber]).map(\.doubleValue) }
    func size(_ name: String) -> (Int, Int) { (reference[name]!["w"] as! Int, reference[name]!["h"] as! Int) }
  }

  static let script = #"""
  import numpy as np, json, os, io
  from PIL import Image
  import pydicom
  from pydicom.dataset import Dataset, FileMetaDataset
  from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid, SecondaryCaptureImageStorage
  from pydicom.pixels import apply_modality_lut
  out = sys.argv[1]
  rng = np.random.default_rng(7)
  ref = {}
  def xray(h, w, hi=255, dtype=np.uint8):
      y, x = np.mgrid[0:h, 0:w]
      base = 0.5 + 0.3*np.sin(x/ max(w,1) * 5) * np.cos(y / max(h,1) * 3) + 0.2*(y/h)
      img = base + rng.normal(0, 0.05, (h, w))
      return np.clip(img*hi, 0, hi).astype(dtype)
  def put(name, arr, **extra):
      ref[name] = dict(w=int(arr.shape[1]), h=int(arr.shape[0]), pixels=arr.astype(np.float64).ravel().tolist(), **extra)
  # JPEG 8-bit gray, odd size, and a colour one
  a = xray(53, 37); Image.fromarray(a).save(f"{out}/gray.jpg", quality=95)
  put("gray.jpg", np.asarray(Image.open(f"{out}/gray.jpg").convert("L")))
  big = xray(301, 203); Image.fromarray(big).save(f"{out}/big.jpg", quality=95)
  im = Image.open(f"{out}/big.jpg"); im.draft("L", (203//4, 301//4))
  put("big.jpg", np.asarray(Image.open(f"{out}/big.jpg")))
  put("big.jpg@2", np.asarray(im))
  rgb = np.stack([xray(40, 30), xray(40, 30), xray(40, 30)], -1)
  Image.fromarray(rgb, "RGB").save(f"{out}/color.jpg", quality=95)
  # PNG 8 and 16 bit
  p8 = xray(45, 61); Image.fromarray(p8).save(f"{out}/gray8.png"); put("gray8.png", np.asarray(Image.open(f"{out}/gray8.png")))
  p16 = xray(33, 27, hi=60000, dtype=np.uint16)
  Image.fromarray(p16).save(f"{out}/gray16.png")
  put("gray16.png", np.asarray(Image.open(f"{out}/gray16.png")).astype(np.uint16))
  # DICOM
  def dicom(name, arr, photometric="MONOCHROME2", slope=None, intercept=None, signed=False, stored=None, rle=False):
      meta = FileMetaDataset()
      meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
      meta.MediaStorageSOPInstanceUID = generate_uid()
      meta.TransferSyntaxUID = ExplicitVRLittleEndian
      ds = Dataset(); ds.file_meta = meta
      ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
      ds.Modality = "CR"; ds.PatientID = "P1"
      ds.Rows, ds.Columns = arr.shape
      ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = photometric
      ds.BitsAllocated = arr.dtype.itemsize * 8; ds.BitsStored = stored or ds.BitsAllocated
      ds.HighBit = ds.BitsStored - 1; ds.PixelRepresentation = 1 if signed else 0
      if slope is not None: ds.RescaleSlope = slope; ds.RescaleIntercept = intercept
      ds.PixelData = arr.tobytes()
      if rle: ds.compress(RLELossless, arr)
      ds.save_as(f"{out}/{name}", enforce_file_format=True)
      back = pydicom.dcmread(f"{out}/{name}")
      put(name, apply_modality_lut(back.pixel_array, back).astype(np.float64), ts=str(back.file_meta.TransferSyntaxUID))
  dicom("plain.dcm", xray(41, 29, hi=4095, dtype=np.uint16), stored=12)
  dicom("mono1.dcm", xray(30, 22, hi=1000, dtype=np.uint16), photometric="MONOCHROME1")
  dicom("rescale.dcm", xray(25, 31, hi=3000, dtype=np.uint16), slope=2.5, intercept=-1024, stored=12)
  dicom("signed.dcm", (xray(20, 26, hi=2000, dtype=np.uint16).astype(np.int16) - 1000), signed=True)
  dicom("rle.dcm", xray(35, 23, hi=4095, dtype=np.uint16), rle=True, stored=12)
  dicom("byte.dcm", xray(19, 17), )
  # Compressed syntaxes pydicom cannot encode itself: encapsulate PIL's codestreams.
  from pydicom.encaps import encapsulate
  def encapsulated(name, arr, codestream, ts, stored):
      meta = FileMetaDataset()
      meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
      meta.MediaStorageSOPInstanceUID = generate_uid()
      meta.TransferSyntaxUID = ts
      ds = Dataset(); ds.file_meta = meta
      ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
      ds.Modality = "CR"; ds.Rows, ds.Columns = arr.shape
      ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"
      ds.BitsAllocated = arr.dtype.itemsize * 8; ds.BitsStored = stored; ds.HighBit = stored - 1
      ds.PixelRepresentation = 0
      ds.PixelData = encapsulate([codestream]); ds["PixelData"].VR = "OB"
      ds.save_as(f"{out}/{name}", enforce_file_format=True)
  j = xray(37, 29); buf = io.BytesIO(); Image.fromarray(j).save(buf, format="JPEG", quality=90)
  encapsulated("jpeg.dcm", j, buf.getvalue(), "1.2.840.10008.1.2.4.50", 8)
  put("jpeg.dcm", np.asarray(Image.open(io.BytesIO(buf.getvalue()))))
  k = xray(33, 21, hi=4095, dtype=np.uint16); buf = io.BytesIO()
  Image.fromarray(k).save(buf, format="JPEG2000", no_jp2=True, irreversible=False)
  encapsulated("j2k.dcm", k, buf.getvalue(), "1.2.840.10008.1.2.4.90", 16)
  put("j2k.dcm", k)
  # Bad files
  data = open(f"{out}/big.jpg", "rb").read()
  open(f"{out}/truncated.jpg", "wb").write(data[: len(data) // 2])
  pdata = open(f"{out}/gray8.png", "rb").read()
  open(f"{out}/truncated.png", "wb").write(pdata[: len(pdata) // 2])
  open(f"{out}/garbage.jpg", "wb").write(b"this is not an image at all" * 10)
  open(f"{out}/empty.png", "wb").write(b"")
  ddata = open(f"{out}/plain.dcm", "rb").read()
  open(f"{out}/truncated.dcm", "wb").write(ddata[: len(ddata) - 900])
  print(json.dumps(ref))
  """#

  static func make() throws -> Set {
    let dir = try TestEnv.scratch("cxr-imaging")
    let ref = try Python.json(script, args: [dir.path]) as! [String: [String: Any]]
    return Set(dir: dir, reference: ref)
  }
}
