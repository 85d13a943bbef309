#pragma once
/// Images in and out through OpenCV.

#include <torch/types.h>

#include <string>

namespace pixel3dmm::io {

/// Reads an image as a float32 1 x 3 x H x W RGB tensor in [0, 1]: 8/16-bit PNG, JPEG (EXIF orientation applied),
/// grayscale (replicated), RGBA (alpha dropped), EXR when OpenCV reads it (values kept as stored).
/// Throws FileNotFound for a missing file and FormatError for a file OpenCV cannot decode.
torch::Tensor read_image(const std::string& path);

/// Writes a 1 x C x H x W, C x H x W or H x W float tensor in [0, 1] (clamped), C in {1, 3, 4} (RGB[A]).
/// The extension picks the format; `bit_depth` 16 writes 16-bit PNG. Atomic.
void write_image(const std::string& path, const torch::Tensor& image, int bit_depth = 8);

}  // namespace pixel3dmm::io
