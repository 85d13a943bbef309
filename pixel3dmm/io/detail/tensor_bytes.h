#pragma once
/// Helpers shared by the tensor-container readers and writers: overflow-checked sizes and dense CPU views.

#include <torch/types.h>

#include <cstdint>
#include <optional>

// Both formats store little-endian data and the readers copy it into tensors byte for byte.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "pixel3dmm's tensor file I/O assumes a little-endian host");

namespace pixel3dmm::io::detail {

/// numel x item_size of `shape`, or nothing when it does not fit in 64 bits (a declared shape such as
/// [1e12, 1e12] must be rejected before anything is allocated, not wrap around to a small number).
inline std::optional<std::uint64_t> checked_nbytes(c10::IntArrayRef shape, std::uint64_t item_size) {
  for (const int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) return 0;  // empty, however large the other dimensions
  }
  std::uint64_t n = item_size;
  for (const int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return std::nullopt;
  }
  return n;
}

/// The tensor as dense, contiguous CPU memory (sparse and strided views are materialised; no autograd).
inline torch::Tensor dense_cpu(const torch::Tensor& t) {
  torch::Tensor d = t.detach();
  if (d.layout() != torch::kStrided) d = d.to_dense();
  return d.to(torch::kCPU).contiguous();
}

}  // namespace pixel3dmm::io::detail
