#pragma once
/// The process-wide runtime: intra-op threads, the BLAS LibTorch uses, versions.

#include <string>

namespace pixel3dmm {

/// What `pixel3dmm info` prints.
struct RuntimeInfo {
  std::string pixel3dmm_version;
  std::string torch_version;
  std::string opencv_version;
  std::string blas_library;  ///< real path of the shared object that provides sgemm_
  std::string blas_kind;     ///< "OpenBLAS", "BLIS", "MKL", "ATLAS", "reference" or "unknown"
  int num_threads = 1;       ///< LibTorch intra-op threads
  int hardware_threads = 1;
  std::string openmp_wait;   ///< "GOMP_SPINCOUNT=1000", "OMP_WAIT_POLICY=passive", ... or "" (libgomp's default)
};

/// Versions, BLAS and threads of this process.
RuntimeInfo runtime_info();

/// True when LibTorch's sgemm_ resolves to the reference (netlib) BLAS: ~25x slower than OpenBLAS here.
bool blas_is_reference();

/// Sets LibTorch's intra-op thread count, and OpenBLAS's own pool to the same; n <= 0 means "all hardware threads".
void set_num_threads(int n);

/// OpenBLAS's thread count for a scope, then the previous one again. For GEMMs issued from inside at::parallel_for:
/// with 1, each worker runs its own single-threaded GEMM instead of queueing for OpenBLAS's one threaded driver.
/// The setting is process-wide: other threads' GEMMs in the same window run with it too. No-op without OpenBLAS.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int n);
  ~ScopedBlasThreads();
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int previous_ = 0;  ///< 0 when OpenBLAS was not found
};

/// glibc hands every freed block above its mmap threshold (128 KB at first, rising with what is freed) back to
/// the kernel, so each forward pass or training step faults its activations in again: over a million page faults
/// in bench_nn, and 4x slower ViT-B forwards in Python's torch. This raises the mmap threshold to 64 MB and the trim
/// threshold to 256 MB, so freed activations are reused; left alone when $GLIBC_TUNABLES sets malloc tunables.
void keep_freed_memory_for_reuse();

/// Once per process: threads from $PIXEL3DMM_NUM_THREADS, else $OMP_NUM_THREADS, else the core count divided by
/// $LOCAL_WORLD_SIZE (processes on this machine, set by torchrun), else the core count (Debian's LibTorch starts with
/// one thread), keep_freed_memory_for_reuse(), and a warning on stderr when the BLAS is the reference one. Called by the command-line program
/// and on `import pixel3dmm`; library users may call it too.
void init_runtime();

/// GOMP_SPINCOUNT that reexec_with_openmp_wait_default() sets.
constexpr const char* kDefaultOpenMPSpinCount = "1000";

/// libgomp (LibTorch's OpenMP) reads its wait policy once, when it is loaded, before main. Its default lets idle
/// workers spin for ~300000 iterations after every parallel region, and Debian's LibTorch also runs OpenBLAS's own
/// thread pool: on a small machine the spinning workers take the cores from OpenBLAS's threads (and the other way
/// round), so on 2 cores network forwards run 2x and training steps 3x slower. When neither OMP_WAIT_POLICY nor
/// GOMP_SPINCOUNT is set, this sets GOMP_SPINCOUNT=kDefaultOpenMPSpinCount and re-executes the program
/// (/proc/self/exe, same arguments; one more start-up, ~0.7 s). It returns when nothing needed doing or the
/// re-execution failed. Programs call it first thing in main; a value the user set is always kept.
void reexec_with_openmp_wait_default();

/// Measured single-precision GEMM rate (GFLOP/s) of an n x n x n product with the current threads.
double measure_gemm_gflops(int n = 512);

}  // namespace pixel3dmm
