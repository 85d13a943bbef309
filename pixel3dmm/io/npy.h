#pragma once
/// NumPy's .npy and .npz formats (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).

#include <torch/types.h>

#include <string>
#include <string_view>

#include "pixel3dmm/io/safetensors.h"  // TensorMap

namespace pixel3dmm::io {

/// Reads a .npy array: format versions 1.0-3.0, C or Fortran order, little or big endian, dtypes
/// f8 f4 f2 i8 i4 i2 i1 u1 b1 (plus u2/u4 widened to the next signed type). Object arrays and structured dtypes
/// are rejected with a FormatError naming the file and the dtype.
torch::Tensor read_npy(const std::string& path);

/// The same from bytes in memory; `name` is used in error messages.
torch::Tensor parse_npy(std::string_view bytes, const std::string& name = "<memory>");

/// Reads every member of an .npz archive (stored or deflated ZIP members, ZIP64 sizes). Keys drop the ".npy".
/// Each member's CRC-32 is checked; a deflated member's declared size is checked against its compressed size
/// and the inflated output is bounded by it. Errors name the archive and the member.
TensorMap read_npz(const std::string& path);

/// The same from bytes in memory; `name` is used in error messages.
TensorMap parse_npz(std::string_view bytes, const std::string& name = "<memory>");

/// Writes a .npy (version 1.0, C order, little endian), atomically. Any device and layout; dtypes Double, Float,
/// Half, Long, Int, Short, Char, Byte, Bool (BFloat16 has no NumPy dtype: ValueError).
void write_npy(const std::string& path, const torch::Tensor& tensor);

/// Writes an .npz archive, deflated when `compress` (as np.savez_compressed) else stored (np.savez), atomically.
void write_npz(const std::string& path, const TensorMap& arrays, bool compress = true);

/// The bytes write_npy would write.
std::string serialize_npy(const torch::Tensor& tensor);

}  // namespace pixel3dmm::io
