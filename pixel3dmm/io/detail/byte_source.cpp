#include "pixel3dmm/io/detail/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::io::detail {

struct ByteSource::File {
  int fd = -1;
  std::string path;
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

ByteSource ByteSource::memory(std::string_view bytes, std::string name) {
  ByteSource s;
  s.memory_ = bytes;
  s.size_ = bytes.size();
  s.name_ = std::move(name);
  return s;
}

ByteSource ByteSource::file(const std::string& path) {
  auto f = std::make_shared<File>();
  f->path = path;
  f->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) {
    const int err = errno;
    PIXEL3DMM_CHECK_T(FileNotFound, err != ENOENT && err != ENOTDIR, path, ": no such file");
    throw FileNotFound(pixel3dmm::detail::concat(path, ": cannot open for reading (", std::strerror(err), ")"));
  }
  struct stat st {};
  PIXEL3DMM_CHECK_T(FileNotFound, ::fstat(f->fd, &st) == 0 && !S_ISDIR(st.st_mode), path, ": is a folder, not a file");
  ByteSource s;
  s.file_ = std::move(f);
  s.size_ = static_cast<std::uint64_t>(st.st_size);
  s.name_ = path;
  return s;
}

void ByteSource::read(std::uint64_t offset, std::uint64_t n, void* dst) const {
  if (offset > size_ || n > size_ - offset) {
    throw FormatError(pixel3dmm::detail::concat(name_, ": read of ", n, " bytes at offset ", offset,
                                                " runs past the end (", size_, " bytes)"));
  }
  if (n == 0) return;
  if (!file_) {
    std::memcpy(dst, memory_.data() + offset, n);
    return;
  }
  auto* out = static_cast<char*>(dst);
  std::uint64_t pos = base_ + offset;
  while (n > 0) {
    // pread moves at most ~2 GiB per call on Linux; loop until done.
    const ssize_t got =
        ::pread(file_->fd, out, static_cast<size_t>(std::min<std::uint64_t>(n, 1u << 30)), static_cast<off_t>(pos));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(pixel3dmm::detail::concat(name_, ": read error (", std::strerror(errno), ")"));
    if (got == 0) throw FormatError(pixel3dmm::detail::concat(name_, ": the file ended early (did it shrink?)"));
    out += got;
    pos += static_cast<std::uint64_t>(got);
    n -= static_cast<std::uint64_t>(got);
  }
}

std::string ByteSource::read_string(std::uint64_t offset, std::uint64_t n) const {
  std::string s;
  if (offset > size_ || n > size_ - offset) read(offset, n, nullptr);  // throws the range error
  s.resize(static_cast<size_t>(n));
  read(offset, n, s.data());
  return s;
}

ByteSource ByteSource::slice(std::uint64_t offset, std::uint64_t n, std::string name) const {
  if (offset > size_ || n > size_ - offset) read(offset, n, nullptr);  // throws the range error
  ByteSource s = *this;
  if (file_) {
    s.base_ = base_ + offset;
  } else {
    s.memory_ = memory_.substr(static_cast<size_t>(offset), static_cast<size_t>(n));
  }
  s.size_ = n;
  s.name_ = std::move(name);
  return s;
}

}  // namespace pixel3dmm::io::detail
