#include "pixel3dmm/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm {
namespace fs = std::filesystem;

namespace {

std::string temporary_name(const fs::path& dest) {
  static std::atomic<unsigned> counter{0};
  const fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  // Leading dot hides it; the extension stays last so writers that dispatch on it still work.
  const std::string name = "." + dest.stem().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter++) + dest.extension().string();
  return (dir / name).string();
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  const fs::path dest(path);
  const fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  std::error_code ec;
  PIXEL3DMM_CHECK_T(Error, fs::is_directory(dir, ec), path, ": cannot write, folder '", dir.string(),
                    "' does not exist");
  PIXEL3DMM_CHECK_T(Error, !fs::is_directory(dest, ec), path, ": cannot write, it is a folder");
  const std::string tmp = temporary_name(dest);
  try {
    write(tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  if (!fs::exists(tmp, ec)) {
    throw Error(detail::concat(path, ": writing failed (the writer produced no file; is the folder writable?)"));
  }
  fsync_path(tmp);
  fs::rename(tmp, dest, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(detail::concat(path, ": cannot write (", ec.message(), ")"));
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_atomically(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    PIXEL3DMM_CHECK_T(Error, f != nullptr, path, ": cannot write (", std::strerror(errno), ")");
    const size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
    const bool ok = n == bytes.size() && std::fflush(f) == 0;
    std::fclose(f);
    PIXEL3DMM_CHECK_T(Error, ok, path, ": cannot write (", std::strerror(errno), ")");
  });
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  PIXEL3DMM_CHECK_T(FileNotFound, fs::exists(path, ec), path, ": no such file");
  PIXEL3DMM_CHECK_T(FileNotFound, !fs::is_directory(path, ec), path, ": is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  PIXEL3DMM_CHECK_T(FileNotFound, in.good(), path, ": cannot open for reading");
  std::string data;
  in.seekg(0, std::ios::end);
  data.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  PIXEL3DMM_CHECK_T(Error, in.good() || data.empty(), path, ": read error");
  return data;
}

void write_folder_atomically(const std::string& folder, const std::function<void(const std::string&)>& write) {
  fs::path target = fs::path(folder).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();  // "out/" names the folder "out"
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".partial");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);  // the writer fills an existing, empty folder
    write(tmp.string());
    fs::remove_all(target, ec);
    fs::rename(tmp, target);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace pixel3dmm
