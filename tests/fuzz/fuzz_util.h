#pragma once
// Shared by the libFuzzer targets: a per-process scratch file for parsers that read paths, and the rule every
// target checks: a parser either succeeds or throws a pixel3dmm::Error. Any other exception escapes
// LLVMFuzzerTestOneInput, std::terminate aborts, and libFuzzer records the input as a finding.
#include <torch/torch.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "pixel3dmm/core/error.h"

namespace fuzz {

/// A folder private to this process (in /dev/shm when present, so the disk is not worn by millions of writes).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("PIXEL3DMM_FUZZ_TMP");
    std::string root = base ? base : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    std::string d = root + "/pixel3dmm-fuzz-" + std::to_string(getpid());
    std::string cmd = "mkdir -p '" + d + "'";
    if (std::system(cmd.c_str()) != 0) std::abort();
    return d;
  }();
  return dir;
}

/// Writes `bytes` to <scratch>/<name> and returns the path.
inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();
  return path;
}

inline std::string_view view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Runs `fn`; pixel3dmm::Error is an accepted outcome (a clear error), anything else propagates.
template <typename F>
void expect_ok_or_error(F&& fn) {
  try {
    fn();
  } catch (const pixel3dmm::Error&) {
  }
}

/// One intra-op thread: fuzzing parallelises by processes, and libFuzzer's timeouts measure one thread.
inline void init() {
  torch::set_num_threads(1);
  torch::set_num_interop_threads(1);
}

}  // namespace fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  return 0;
}
