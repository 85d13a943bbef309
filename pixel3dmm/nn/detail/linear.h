#pragma once
// The fully connected layers' GEMM, run on LibTorch's intra-op threads.
#include <torch/types.h>

namespace pixel3dmm::nn::detail {

/// at::linear(x, weight, bias): x ... x K, weight N x K, bias N (or undefined) -> ... x N.
/// Without gradients (inference, float32) the rows of x are split over LibTorch's intra-op threads, each running a
/// single-threaded GEMM with the bias fused (beta = 1), instead of OpenBLAS's own thread pool: one pool of workers
/// for the whole forward. Two pools side by side (OpenMP's for the attention and elementwise ops, OpenBLAS's for
/// the GEMMs) take each other's cores whenever one pool's idle workers spin, which libgomp's default wait policy
/// does for ~300000 iterations after every parallel region: 1.7x slower forwards when `torch` is imported before
/// `pixel3dmm` (issue 27). Each output row is the same dot products either way.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace pixel3dmm::nn::detail
