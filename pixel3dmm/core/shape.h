#pragma once
/// Readable shape and dtype checks for tensors crossing the public API.

#include <torch/types.h>

#include <string>
#include <vector>

namespace pixel3dmm {

/// "[2, 3, 4]"; -1 entries of an expected shape print as "*".
std::string shape_string(c10::IntArrayRef shape);

/// True when `shape` matches `expected`, where -1 in `expected` matches any size.
bool shape_matches(c10::IntArrayRef shape, c10::IntArrayRef expected);

/// Throws ValueError "<what>: expected shape [B, 3, *, *], found [1, 4, 5, 6]" on mismatch.
/// `expected` uses -1 for "any".
void check_shape(const torch::Tensor& t, c10::IntArrayRef expected, const std::string& what);

/// Throws ValueError "<what>: expected dtype Float, found Double" on mismatch.
void check_dtype(const torch::Tensor& t, torch::ScalarType expected, const std::string& what);

/// Throws ValueError when `t` holds NaN or Inf ("<what>: contains 3 non-finite values").
void check_finite(const torch::Tensor& t, const std::string& what);

}  // namespace pixel3dmm
