#pragma once
/// Image resizing that reproduces Pillow's `Image.resize(size)` for 8-bit RGB images (its default filter,
/// BICUBIC), which the official Pixel3DMM code applies to every crop and prediction it reads.

#include <torch/types.h>

namespace pixel3dmm::io {

/// Pillow's BICUBIC resize of 8-bit images, bit-exact: separable antialiased cubic convolution (a = -0.5, support
/// widened by the scale when downsampling), horizontal pass first, fixed-point coefficients with 22 fractional
/// bits, rounding and clipping to 8 bits after each pass. Same size = unchanged copy (as Pillow).
/// image: N x C x H x W uint8 -> N x C x height x width uint8.
torch::Tensor resize_pil_bicubic_u8(const torch::Tensor& image, int64_t height, int64_t width);

/// The same for float images in [0, 1] that were read from 8-bit files (values k / 255): quantised to 8 bits
/// (round(x * 255)), resized as Pillow, divided by 255. For such inputs the result equals
/// `np.array(Image.fromarray(img).resize((width, height))) / 255` exactly; other inputs lose their sub-8-bit
/// detail. Same size = unchanged (no quantisation).
/// image: N x C x H x W float -> N x C x height x width float.
torch::Tensor resize_pil_bicubic(const torch::Tensor& image, int64_t height, int64_t width);

}  // namespace pixel3dmm::io
