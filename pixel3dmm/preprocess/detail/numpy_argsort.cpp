// NumPy 1.2x's `aquicksort_` / `aheapsort_` for floating-point keys, written from their description
// (official-preprocessing.md 9.3); checked against numpy.argsort itself by tests/python/test_faceboxes.py.
#include "pixel3dmm/preprocess/detail/numpy_argsort.h"

#include <cstddef>
#include <utility>

namespace pixel3dmm::preprocess::detail {
namespace {

/// NumPy's float order: a < b, with NaN after every number.
template <typename T>
bool less(T a, T b) {
  return a < b || (b != b && a == a);
}

/// Moves the index `tmp` down from slot i of the 1-based heap a[1] .. a[n] (a max-heap in NumPy's order).
template <typename T>
void sift_down(const T* v, int64_t* a, int64_t i, int64_t n, int64_t tmp) {
  for (int64_t j = i << 1; j <= n;) {
    if (j < n && less(v[a[j]], v[a[j + 1]])) j += 1;
    if (!less(v[tmp], v[a[j]])) break;
    a[i] = a[j];
    i = j;
    j += j;
  }
  a[i] = tmp;
}

/// The heapsort NumPy falls back to; `a` is 1-based (a[1] .. a[n]).
template <typename T>
void heapsort(const T* v, int64_t* tosort, int64_t n) {
  int64_t* a = tosort - 1;
  for (int64_t l = n >> 1; l > 0; --l) sift_down(v, a, l, n, a[l]);
  for (; n > 1;) {
    const int64_t tmp = a[n];
    a[n] = a[1];
    n -= 1;
    sift_down(v, a, 1, n, tmp);
  }
}

template <typename T>
std::vector<int64_t> argsort(const T* v, int64_t num) {
  std::vector<int64_t> order(static_cast<size_t>(num > 0 ? num : 0));
  for (int64_t i = 0; i < num; ++i) order[static_cast<size_t>(i)] = i;
  if (num < 2) return order;
  constexpr int64_t kSmall = 15;  // NumPy's SMALL_QUICKSORT: insertion sort when pr - pl <= 15
  int depth_budget = 0;           // 2 * floor(log2(num)), NumPy's npy_get_msb(num) * 2
  for (uint64_t u = static_cast<uint64_t>(num); u >>= 1;) ++depth_budget;
  depth_budget *= 2;

  int64_t* pl = order.data();
  int64_t* pr = pl + num - 1;
  std::vector<int64_t*> stack;
  std::vector<int> depths;
  int cdepth = depth_budget;
  for (;;) {
    if (cdepth < 0) {
      heapsort(v, pl, pr - pl + 1);
    } else {
      while (pr - pl > kSmall) {
        int64_t* pm = pl + ((pr - pl) >> 1);
        if (less(v[*pm], v[*pl])) std::swap(*pm, *pl);
        if (less(v[*pr], v[*pm])) std::swap(*pr, *pm);
        if (less(v[*pm], v[*pl])) std::swap(*pm, *pl);
        const T vp = v[*pm];
        int64_t* pi = pl;
        int64_t* pj = pr - 1;
        std::swap(*pm, *pj);
        for (;;) {
          do ++pi;
          while (less(v[*pi], vp));
          do --pj;
          while (less(vp, v[*pj]));
          if (pi >= pj) break;
          std::swap(*pi, *pj);
        }
        std::swap(*pi, *(pr - 1));
        // The larger part goes on the stack, the loop continues with the smaller one.
        if (pi - pl < pr - pi) {
          stack.push_back(pi + 1);
          stack.push_back(pr);
          pr = pi - 1;
        } else {
          stack.push_back(pl);
          stack.push_back(pi - 1);
          pl = pi + 1;
        }
        depths.push_back(--cdepth);
      }
      for (int64_t* pi = pl + 1; pi <= pr; ++pi) {
        const int64_t vi = *pi;
        const T vp = v[vi];
        int64_t* pj = pi;
        int64_t* pk = pi - 1;
        while (pj > pl && less(vp, v[*pk])) *pj-- = *pk--;
        *pj = vi;
      }
    }
    if (stack.empty()) break;
    pr = stack.back();
    stack.pop_back();
    pl = stack.back();
    stack.pop_back();
    cdepth = depths.back();
    depths.pop_back();
  }
  return order;
}

}  // namespace

std::vector<int64_t> numpy_argsort(const float* values, int64_t n) { return argsort(values, n); }
std::vector<int64_t> numpy_argsort(const double* values, int64_t n) { return argsort(values, n); }

}  // namespace pixel3dmm::preprocess::detail
