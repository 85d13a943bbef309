#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/core/shape.h"
#include "test_util.h"

using namespace pixel3dmm;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

TEST_CASE("check_shape names the tensor and both shapes", "[core]") {
  const auto t = torch::zeros({1, 4, 5, 6});
  check_shape(t, {1, 4, -1, -1}, "image");
  require_throws_with<ValueError>([&] { check_shape(t, {-1, 3, -1, -1}, "image"); },
                                  {"image", "expected shape [*, 3, *, *]", "found [1, 4, 5, 6]"});
  require_throws_with<ValueError>([&] { check_dtype(t, torch::kDouble, "uv"); }, {"uv", "Double", "Float"});
  auto bad = torch::zeros({3});
  bad[1] = std::numeric_limits<float>::quiet_NaN();
  require_throws_with<ValueError>([&] { check_finite(bad, "normals"); }, {"normals", "1 non-finite"});
}

TEST_CASE("write_atomically leaves nothing behind when the writer fails", "[core]") {
  TempDir dir;
  const std::string dest = dir.file("out.bin");
  write_file_atomically(dest, "first");
  REQUIRE(read_file(dest) == "first");
  REQUIRE_THROWS_AS(write_atomically(dest,
                                     [](const std::string& tmp) {
                                       std::ofstream(tmp) << "half";
                                       throw std::runtime_error("writer died");
                                     }),
                    std::runtime_error);
  REQUIRE(read_file(dest) == "first");  // old content kept
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) files += e.is_regular_file();
  REQUIRE(files == 1);  // no temporary left over
}

TEST_CASE("write_atomically refuses a missing folder and read_file a missing file", "[core]") {
  TempDir dir;
  require_throws_with<Error>([&] { write_file_atomically(dir.file("no/such/dir/x.bin"), "x"); },
                             {"x.bin", "does not exist"});
  require_throws_with<FileNotFound>([&] { read_file(dir.file("missing.bin")); }, {"missing.bin", "no such file"});
}

TEST_CASE("runtime reports a non-reference BLAS and settable threads", "[core]") {
  const RuntimeInfo info = runtime_info();
  INFO("BLAS library: " << info.blas_library);
  CHECK(info.blas_kind != "reference");
  set_num_threads(1);
  REQUIRE(runtime_info().num_threads == 1);
  set_num_threads(2);
  REQUIRE(runtime_info().num_threads == 2);
}

TEST_CASE("set_num_threads also sizes OpenBLAS's own thread pool", "[core]") {
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get == nullptr) return;  // another BLAS: nothing to keep in step
  set_num_threads(1);
  REQUIRE(get() == 1);
  set_num_threads(2);
  REQUIRE(get() >= 1);
}

TEST_CASE("ScopedBlasThreads sets OpenBLAS's threads for its scope only", "[core]") {
  auto get = reinterpret_cast<int (*)()>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get == nullptr) return;
  set_num_threads(2);
  const int before = get();
  {
    const ScopedBlasThreads one(1);
    REQUIRE(get() == 1);
  }
  REQUIRE(get() == before);
}

#if defined(__SANITIZE_ADDRESS__)
#define PIXEL3DMM_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PIXEL3DMM_TEST_UNDER_ASAN 1
#endif
#endif

TEST_CASE("keep_freed_memory_for_reuse keeps a freed 32 MB block in the heap", "[core]") {
#ifdef PIXEL3DMM_TEST_UNDER_ASAN
  WARN("AddressSanitizer replaces glibc's malloc: its thresholds and mallinfo2 do not apply in this build");
  return;
#endif
  keep_freed_memory_for_reuse();  // main's init_runtime did it already; calling again changes nothing
  const size_t bytes = size_t(32) << 20;
  void* p = std::malloc(bytes);
  REQUIRE(p != nullptr);
  std::memset(p, 1, bytes);
  const auto held = ::mallinfo2();
  std::free(p);
  const auto after = ::mallinfo2();
  // below the raised mmap threshold the block came from the heap, and below the trim threshold it stays there
  CHECK(held.hblkhd < after.hblkhd + bytes);  // not an mmapped block
  CHECK(after.fordblks >= bytes);             // free for the next allocation
}
