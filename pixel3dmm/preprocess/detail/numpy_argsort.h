#pragma once
/// NumPy's default argsort (kind 'quicksort') as NumPy 1.23 / 1.24 run it on x86 (the official preprocessing pins
/// numpy 1.23; Debian 12 ships 1.24), for reproducing which of several equal scores the official code keeps.
///
/// The routine is an introsort over the index array: median-of-three pivot, Hoare-style partition, the larger
/// part pushed on a stack, insertion sort for ranges of at most 16 elements, heapsort when the depth budget
/// 2 floor(log2 n) runs out; NaN sorts last. Among equal values its order is neither stable nor reversed-stable,
/// so a stable sort does not reproduce it (official-preprocessing.md section 9.3). NumPy >= 1.25 on AVX-512
/// machines uses another (SIMD) argsort with a different tie order.

#include <cstdint>
#include <vector>

namespace pixel3dmm::preprocess::detail {

/// Indices that sort values[0 .. n-1] ascending, in NumPy's order among ties.
std::vector<int64_t> numpy_argsort(const float* values, int64_t n);
std::vector<int64_t> numpy_argsort(const double* values, int64_t n);

}  // namespace pixel3dmm::preprocess::detail
