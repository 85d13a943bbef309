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
};

/// Versions, BLAS and threads of this process.
RuntimeInfo runtime_info();

/// True when LibTorch's sgemm_ resolves to the reference (netlib) BLAS: ~25x slower than OpenBLAS here.
bool blas_is_reference();

/// Sets LibTorch's intra-op thread count, and OpenBLAS's own pool to the same; n <= 0 means "all hardware threads".
void set_num_threads(int n);

/// Once per process: threads from $PIXEL3DMM_NUM_THREADS, else $OMP_NUM_THREADS, else the core count divided by
/// $LOCAL_WORLD_SIZE (processes on this machine, set by torchrun), else the core count (Debian's LibTorch starts with
/// one thread) and a warning on stderr when the BLAS is the reference one. Called by the command-line program
/// and on `import pixel3dmm`; library users may call it too.
void init_runtime();

/// Measured single-precision GEMM rate (GFLOP/s) of an n x n x n product with the current threads.
double measure_gemm_gflops(int n = 512);

}  // namespace pixel3dmm
