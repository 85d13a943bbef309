#pragma once
// Internals shared by the render kernels: dynamic task scheduling over at::parallel_for, per-chunk gradient
// buffers, input checks.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::render::detail {

/// Runs fn(i) for i in [0, n) on the intra-op threads, handing out tasks one at a time so that uneven tasks (image
/// tiles with many or few triangles) balance. Results must not depend on which thread runs a task.
template <typename F>
void parallel_tasks(int64_t n, const F& fn) {
  if (n <= 0) return;
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), n);
  if (threads <= 1 || at::in_parallel_region()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  });
}

/// Number of gradient accumulation chunks for `rows` rows of work: one per thread (at most one per row), so a
/// gradient is bitwise reproducible for a given thread count.
inline int64_t num_chunks(int64_t rows) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
}

/// Calls fn(row) for the rows of chunk c: blocks of 8 rows dealt round-robin to the chunks, so that every chunk gets
/// a share of the busy middle of the image.
template <typename F>
void for_chunk_rows(int64_t c, int64_t chunks, int64_t rows, const F& fn) {
  constexpr int64_t kBlock = 8;
  for (int64_t start = c * kBlock; start < rows; start += chunks * kBlock)
    for (int64_t r = start; r < std::min(rows, start + kBlock); ++r) fn(r);
}

/// faces: F x 3 integer -> contiguous int64 copy, every index checked to lie in [0, num_vertices).
torch::Tensor checked_faces(const torch::Tensor& faces, int64_t num_vertices, const std::string& what);

/// pos_clip: B x V x 4 float32/float64 with finite values, else ValueError naming `what`.
void check_clip_positions(const torch::Tensor& pos_clip, const std::string& what);

}  // namespace pixel3dmm::render::detail
