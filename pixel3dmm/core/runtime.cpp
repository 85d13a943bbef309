#include "pixel3dmm/core/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <opencv2/core/version.hpp>
#include <torch/torch.h>

#include "pixel3dmm/core/version.h"

namespace pixel3dmm {

namespace {

std::string sgemm_provider() {
  void* sym = ::dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (sym == nullptr || ::dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "";
  std::error_code ec;
  const auto real = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::string(info.dli_fname) : real.string();
}

std::string classify_blas(const std::string& path) {
  auto has = [&](const char* s) { return path.find(s) != std::string::npos; };
  if (path.empty()) return "unknown";
  if (has("openblas")) return "OpenBLAS";
  if (has("blis")) return "BLIS";
  if (has("mkl")) return "MKL";
  if (has("atlas")) return "ATLAS";
  if (has("/blas/") || has("libblas.so") || has("libcblas")) return "reference";
  return "unknown";
}

void* openblas_symbol(const char* name) {
  void* sym = ::dlsym(RTLD_DEFAULT, name);
  if (sym == nullptr)
    if (void* lib = ::dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD)) sym = ::dlsym(lib, name);
  return sym;
}

/// OpenBLAS's pthreads build keeps its own thread pool, sized to the core count and untouched by
/// torch::set_num_threads. Beside LibTorch's pool it oversubscribes the cores and turns a skinny GEMM such as
/// FLAME's skinning (5023 x 5 x 24) from 0.03 ms into several ms, so the two are kept in step.
void set_blas_threads(int n) {
  static void* sym = openblas_symbol("openblas_set_num_threads");
  if (sym != nullptr) reinterpret_cast<void (*)(int)>(sym)(n);
}

int blas_threads() {
  static void* sym = openblas_symbol("openblas_get_num_threads");
  return sym != nullptr ? reinterpret_cast<int (*)()>(sym)() : 0;
}

std::string openmp_wait_setting() {
  for (const char* name : {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"})
    if (const char* v = std::getenv(name); v && *v) return std::string(name) + "=" + v;
  return "";
}

}  // namespace

void keep_freed_memory_for_reuse() {
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::string(t).find("malloc") != std::string::npos) return;
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void reexec_with_openmp_wait_default() {
  if (!openmp_wait_setting().empty()) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  if (args.empty()) return;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::setenv("GOMP_SPINCOUNT", kDefaultOpenMPSpinCount, 0);
  ::execv("/proc/self/exe", argv.data());
  ::unsetenv("GOMP_SPINCOUNT");  // exec failed: carry on with libgomp's default, as if never called
}

ScopedBlasThreads::ScopedBlasThreads(int n) : previous_(blas_threads()) {
  if (previous_ > 0 && previous_ != n) set_blas_threads(n);
}

ScopedBlasThreads::~ScopedBlasThreads() {
  if (previous_ > 0) set_blas_threads(previous_);
}

RuntimeInfo runtime_info() {
  RuntimeInfo r;
  r.pixel3dmm_version = PIXEL3DMM_VERSION_STRING;
  r.torch_version = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                    std::to_string(TORCH_VERSION_PATCH);
  r.opencv_version = CV_VERSION;
  r.blas_library = sgemm_provider();
  r.blas_kind = classify_blas(r.blas_library);
  r.num_threads = torch::get_num_threads();
  r.hardware_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  r.openmp_wait = openmp_wait_setting();
  return r;
}

bool blas_is_reference() { return classify_blas(sgemm_provider()) == "reference"; }

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  set_blas_threads(n);
}

void init_runtime() {
  static std::once_flag once;
  std::call_once(once, [] {
    int n = 0;
    if (const char* env = std::getenv("PIXEL3DMM_NUM_THREADS")) n = std::atoi(env);
    // Several processes on one machine (torchrun sets OMP_NUM_THREADS=1 and LOCAL_WORLD_SIZE) must not each take
    // every core.
    if (n <= 0)
      if (const char* env = std::getenv("OMP_NUM_THREADS")) n = std::atoi(env);
    if (n <= 0)
      if (const char* env = std::getenv("LOCAL_WORLD_SIZE"))
        if (std::atoi(env) > 1)
          n = std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) / std::atoi(env));
    set_num_threads(n);
    keep_freed_memory_for_reuse();
    if (blas_is_reference()) {
      std::cerr << "pixel3dmm: warning: LibTorch is using the reference BLAS (" << sgemm_provider()
                << "), which is ~25x slower than OpenBLAS. Install libopenblas0-pthread "
                   "(apt-get install libopenblas0-pthread).\n";
    }
  });
}

double measure_gemm_gflops(int n) {
  torch::NoGradGuard no_grad;
  const auto a = torch::rand({n, n});
  const auto b = torch::rand({n, n});
  auto c = torch::mm(a, b);  // warm-up
  int reps = 0;
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  do {
    c = torch::mm(a, b);
    ++reps;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds < 0.2);
  return 2.0 * n * n * double(n) * reps / seconds / 1e9;
}

}  // namespace pixel3dmm
