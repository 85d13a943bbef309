#pragma once
/// Images in and out through OpenCV.

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace pixel3dmm::io {

/// Reads an image as a float32 1 x 3 x H x W RGB tensor: 8-bit values / 255, 16-bit / 65535 (so in [0, 1]);
/// float images (EXR) keep their stored values. PNG, JPEG (EXIF orientation applied), BMP, TIFF, WebP, PNM, EXR:
/// whatever this OpenCV build decodes. Grayscale is replicated to 3 channels; an alpha channel is dropped.
/// Throws FileNotFound for a missing file and FormatError for a file OpenCV cannot decode or one larger than
/// max_image_pixels() (checked from the PNG/JPEG/BMP header before decoding, after decoding for other formats).
torch::Tensor read_image(const std::string& path);

/// Writes a 1 x C x H x W, C x H x W or H x W floating point tensor, C in {1, 3, 4} (gray, RGB, RGBA).
/// The extension picks the format. Integer formats store values in [0, 1] (clamped) as 8-bit, or 16-bit with
/// `bit_depth` 16 (.png, .tif); .exr stores float32 values as they are (`bit_depth` not consulted). Atomic.
void write_image(const std::string& path, const torch::Tensor& image, int bit_depth = 8);

/// The 8-bit pixels write_image stores: a 1 x C x H x W or C x H x W float tensor in [0, 1] (clamped) ->
/// H x W x C uint8, contiguous, on the CPU. Networks the official code feeds from saved 8-bit crops (MICA,
/// SCRFD) take this.
torch::Tensor to_uint8_hwc(const torch::Tensor& image);

/// The largest width x height read_image accepts; default 100 megapixels, or the environment variable
/// PIXEL3DMM_MAX_IMAGE_PIXELS when set to a positive integer at start-up. A decompression bomb (a tiny file that
/// declares a huge image) is refused before its pixels are allocated.
int64_t max_image_pixels();

/// Sets the limit of max_image_pixels() (process-wide). Throws ValueError for pixels < 1.
void set_max_image_pixels(int64_t pixels);

}  // namespace pixel3dmm::io
