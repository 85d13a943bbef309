// `pixel3dmm info`: versions, BLAS and threads, and a measured GEMM rate.
#include <cstdio>
#include <iostream>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/core/runtime.h"

namespace pixel3dmm::cli {
namespace {

int run_info(const std::vector<std::string>& argv) {
  Args args("pixel3dmm info", "Prints versions, the BLAS LibTorch uses, thread counts and a measured GEMM rate.");
  args.option("threads", "intra-op threads (0 = all cores)", "0").flag("no-gemm", "skip the GEMM measurement");
  if (!args.parse(argv)) {
    std::cout << args.help();
    return kOk;
  }
  if (args.has("threads")) set_num_threads(std::stoi(args.get("threads")));
  const RuntimeInfo info = runtime_info();
  std::printf("pixel3dmm   %s\n", info.pixel3dmm_version.c_str());
  std::printf("LibTorch    %s\n", info.torch_version.c_str());
  std::printf("OpenCV      %s\n", info.opencv_version.c_str());
  std::printf("BLAS        %s (%s)\n", info.blas_kind.c_str(), info.blas_library.c_str());
  std::printf("threads     %d intra-op (of %d hardware threads)\n", info.num_threads, info.hardware_threads);
  std::printf("OpenMP wait %s\n", info.openmp_wait.empty() ? "libgomp default (spins ~300000 iterations)"
                                                           : info.openmp_wait.c_str());
  if (!args.flag_set("no-gemm")) std::printf("SGEMM 512   %.1f GFLOP/s\n", measure_gemm_gflops(512));
  if (info.blas_kind == "reference")
    std::printf("warning: reference BLAS in use; install libopenblas0-pthread for ~25x faster matrix products\n");
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("info", "versions, BLAS, threads and a GEMM rate", run_info);

}  // namespace pixel3dmm::cli
