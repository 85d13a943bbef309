// Images through OpenCV.
//
// Reading decodes from memory with IMREAD_ANYDEPTH | IMREAD_ANYCOLOR rather than IMREAD_UNCHANGED: that keeps
// 16-bit and float depth, and, unlike IMREAD_UNCHANGED, lets OpenCV apply the JPEG EXIF orientation; the only thing
// it gives up is the alpha channel, which read_image drops anyway. The pixel limit is checked from the PNG, JPEG or
// BMP header before decoding (OpenCV's own limit, 2^30 pixels by default, guards the other decoders) and again after
// decoding for every format.
#include "pixel3dmm/io/image.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::io {

namespace {

using ::pixel3dmm::detail::concat;

/// The default limit, or the environment's PIXEL3DMM_MAX_IMAGE_PIXELS (a positive integer; anything else is ignored)
/// so that command-line jobs can change it without code.
int64_t initial_max_pixels() {
  constexpr int64_t kDefault = 100'000'000;
  const char* env = std::getenv("PIXEL3DMM_MAX_IMAGE_PIXELS");
  if (!env || !*env) return kDefault;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  return (*end == '\0' && v >= 1) ? static_cast<int64_t>(v) : kDefault;
}

std::atomic<int64_t> g_max_pixels{initial_max_pixels()};

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

/// OpenCV reads and writes OpenEXR only when OPENCV_IO_ENABLE_OPENEXR is set (a guard against the codec's attack
/// surface); asking pixel3dmm for an .exr is that opt-in. An explicit setting by the user is left as it is.
void enable_openexr() {
  static const bool once = [] { return ::setenv("OPENCV_IO_ENABLE_OPENEXR", "1", /*overwrite=*/0) == 0; }();
  (void)once;
}

uint32_t be16(const unsigned char* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t be32(const unsigned char* p) { return (be16(p) << 16) | be16(p + 2); }
int32_t le32(const unsigned char* p) {
  return static_cast<int32_t>(uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24));
}

/// Width and height from a PNG, JPEG or BMP header without decoding; false for other formats.
bool header_size(const std::string& bytes, int64_t& width, int64_t& height) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 24 && std::memcmp(p, png_magic, 8) == 0 && std::memcmp(p + 12, "IHDR", 4) == 0) {
    width = be32(p + 16);
    height = be32(p + 20);
    return true;
  }
  if (n >= 26 && p[0] == 'B' && p[1] == 'M') {
    const int32_t dib = le32(p + 14);  // size of the info header: 12 (OS/2, 16-bit sizes) or >= 40
    if (dib == 12) {
      width = p[18] | (p[19] << 8);
      height = p[20] | (p[21] << 8);
      return true;
    }
    if (dib < 40) return false;
    width = std::abs(int64_t(le32(p + 18)));
    height = std::abs(int64_t(le32(p + 22)));  // negative: top-down rows
    return true;
  }
  if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
    size_t i = 2;
    while (i + 4 <= n) {
      if (p[i] != 0xFF) return false;  // not at a marker: leave it to the decoder
      while (i < n && p[i] == 0xFF) ++i;  // fill bytes
      if (i >= n) return false;
      const unsigned char m = p[i++];
      if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // markers without a length
      if (m == 0xD9 || m == 0xDA || i + 2 > n) return false;  // end of image / start of scan before any frame
      const uint32_t len = be16(p + i);
      const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof) {
        if (i + 7 > n) return false;
        height = be16(p + i + 3);
        width = be16(p + i + 5);
        return true;
      }
      i += len;
    }
  }
  return false;
}

void check_pixels(int64_t width, int64_t height, const std::string& path) {
  const int64_t limit = g_max_pixels.load();
  if (width > 0 && height > 0 && width > limit / height) {
    throw FormatError(concat(path, ": image of ", width, " x ", height, " pixels exceeds the limit of ", limit,
                             " pixels (pixel3dmm::io::set_max_image_pixels raises it)"));
  }
}

}  // namespace

int64_t max_image_pixels() { return g_max_pixels.load(); }

void set_max_image_pixels(int64_t pixels) {
  PIXEL3DMM_CHECK(pixels >= 1, "set_max_image_pixels: expected a positive pixel count, found ", pixels);
  g_max_pixels.store(pixels);
}

torch::Tensor read_image(const std::string& path) {
  const std::string bytes = read_file(path);
  PIXEL3DMM_CHECK_FORMAT(!bytes.empty(), path, "empty file (not an image)");
  int64_t width = 0, height = 0;
  if (header_size(bytes, width, height)) check_pixels(width, height, path);

  const bool exr = bytes.size() >= 4 && std::memcmp(bytes.data(), "\x76\x2f\x31\x01", 4) == 0;
  const int flags = cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR;
  cv::Mat mat;
  try {
    if (exr) {
      // OpenCV's EXR decoder cannot read from memory (imdecode would go through a temporary file).
      enable_openexr();
      mat = cv::imread(path, flags);
    } else {
      const cv::Mat buf(1, static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX)), CV_8U,
                        const_cast<char*>(bytes.data()));
      mat = cv::imdecode(buf, flags);
    }
  } catch (const cv::Exception& e) {
    throw FormatError(concat(path, ": cannot decode the image (OpenCV: ", e.err, ")"));
  }
  PIXEL3DMM_CHECK_FORMAT(!mat.empty(), path,
                         exr ? "OpenEXR image that OpenCV could not decode (corrupt, or disabled by "
                               "OPENCV_IO_ENABLE_OPENEXR=0)"
                             : "not an image this OpenCV build can decode (PNG, JPEG, BMP, TIFF, WebP, PNM, EXR)");
  check_pixels(mat.cols, mat.rows, path);

  double scale = 1.0;
  switch (mat.depth()) {
    case CV_8U: scale = 1.0 / 255.0; break;
    case CV_16U: scale = 1.0 / 65535.0; break;
    case CV_32F:
    case CV_64F: scale = 1.0; break;
    default:
      throw FormatError(concat(path, ": unsupported pixel depth (OpenCV depth code ", mat.depth(),
                               "; expected 8-bit, 16-bit unsigned or float)"));
  }
  cv::Mat rgb;
  switch (mat.channels()) {
    case 1: cv::cvtColor(mat, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(mat, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(mat, rgb, cv::COLOR_BGRA2RGB); break;
    default: throw FormatError(concat(path, ": unsupported channel count ", mat.channels(), " (expected 1, 3 or 4)"));
  }
  auto hwc = torch::empty({rgb.rows, rgb.cols, 3}, torch::kFloat);
  cv::Mat dst(rgb.rows, rgb.cols, CV_32FC3, hwc.data_ptr<float>());
  rgb.convertTo(dst, CV_32F, scale);
  return hwc.permute({2, 0, 1}).unsqueeze(0).contiguous();
}

torch::Tensor to_uint8_hwc(const torch::Tensor& image) {
  PIXEL3DMM_CHECK(image.defined() && image.is_floating_point() &&
                      (image.dim() == 3 || (image.dim() == 4 && image.size(0) == 1)),
                  "to_uint8_hwc: expected a float [1, C, H, W] or [C, H, W] image, found ",
                  image.defined() ? shape_string(image.sizes()) : std::string("undefined"));
  const auto chw = image.dim() == 4 ? image[0] : image;
  return chw.detach().to(torch::kCPU, torch::kFloat).clamp(0, 1).mul(255).round().to(torch::kUInt8)
      .permute({1, 2, 0}).contiguous();
}

void write_image(const std::string& path, const torch::Tensor& image, int bit_depth) {
  PIXEL3DMM_CHECK(image.defined(), path, ": cannot write an undefined tensor as an image");
  PIXEL3DMM_CHECK(image.is_floating_point(), path, ": image: expected a floating point tensor, found ",
                  image.scalar_type());
  torch::Tensor chw;
  if (image.dim() == 2) {
    chw = image.unsqueeze(0);
  } else if (image.dim() == 3) {
    chw = image;
  } else if (image.dim() == 4 && image.size(0) == 1) {
    chw = image[0];
  } else {
    throw ValueError(concat(path, ": image: expected shape [1, C, H, W], [C, H, W] or [H, W], found ",
                            shape_string(image.sizes())));
  }
  const int64_t C = chw.size(0), H = chw.size(1), W = chw.size(2);
  PIXEL3DMM_CHECK(C == 1 || C == 3 || C == 4, path, ": image: expected 1, 3 or 4 channels, found ", C, " (shape ",
                  shape_string(image.sizes()), ")");
  PIXEL3DMM_CHECK(H > 0 && W > 0, path, ": image: empty image of shape ", shape_string(image.sizes()));
  check_finite(image, path + ": image");

  const std::string ext = lower_extension(path);
  const bool exr = ext == ".exr";
  if (!exr) {
    PIXEL3DMM_CHECK(bit_depth == 8 || bit_depth == 16, path, ": bit_depth must be 8 or 16, found ", bit_depth);
    PIXEL3DMM_CHECK(bit_depth == 8 || ext == ".png" || ext == ".tif" || ext == ".tiff", path,
                    ": 16-bit images need a .png or .tif path, found '", ext, "'");
  }
  PIXEL3DMM_CHECK(!(C == 4 && (ext == ".jpg" || ext == ".jpeg")), path,
                  ": JPEG cannot store an alpha channel (pass 3 channels)");
  if (exr) enable_openexr();
  PIXEL3DMM_CHECK(cv::haveImageWriter(path), path, ": no image writer for extension '", ext,
                  "' in this OpenCV build (use .png, .jpg, .bmp, .tif, .exr, ...)");

  torch::Tensor hwc = chw.detach().to(torch::kCPU).to(torch::kFloat).permute({1, 2, 0});
  int cv_type;
  if (exr) {
    cv_type = CV_32FC(static_cast<int>(C));
  } else if (bit_depth == 16) {
    hwc = (hwc.clamp(0, 1) * 65535.0f).round().to(torch::kInt32);
    cv_type = CV_16UC(static_cast<int>(C));
  } else {
    hwc = to_uint8_hwc(chw);
    cv_type = CV_8UC(static_cast<int>(C));
  }
  hwc = hwc.contiguous();
  cv::Mat mat;
  if (bit_depth == 16 && !exr) {
    // LibTorch 1.13 has no uint16: convert the int32 values to CV_16U through OpenCV.
    cv::Mat(static_cast<int>(H), static_cast<int>(W), CV_32SC(static_cast<int>(C)), hwc.data_ptr())
        .convertTo(mat, cv_type);
  } else {
    mat = cv::Mat(static_cast<int>(H), static_cast<int>(W), cv_type, hwc.data_ptr());
  }
  // Into a new Mat: `mat` may share memory with the caller's tensor.
  cv::Mat out;
  if (C == 1) out = mat;
  if (C == 3) cv::cvtColor(mat, out, cv::COLOR_RGB2BGR);
  if (C == 4) cv::cvtColor(mat, out, cv::COLOR_RGBA2BGRA);

  write_atomically(path, [&](const std::string& tmp) {
    bool ok = false;
    try {
      ok = cv::imwrite(tmp, out);
    } catch (const cv::Exception& e) {
      throw Error(concat(path, ": cannot write the image (OpenCV: ", e.err, ")"));
    }
    PIXEL3DMM_CHECK_T(Error, ok, path, ": OpenCV could not write the image");
  });
}

}  // namespace pixel3dmm::io
