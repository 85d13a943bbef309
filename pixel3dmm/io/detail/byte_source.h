#pragma once
/// A read-only window of bytes that lives either in memory or in a file. Readers of the tensor formats parse the
/// small headers through it and then read each payload straight into the memory of its tensor, so a file is read
/// once, with no second copy of the data in between and no allocation before the header has been validated.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pixel3dmm::io::detail {

class ByteSource {
 public:
  /// Bytes in memory (not copied: `bytes` must outlive the source); `name` prefixes error messages.
  static ByteSource memory(std::string_view bytes, std::string name);
  /// A whole file, read on demand with pread. Throws FileNotFound naming the path.
  static ByteSource file(const std::string& path);

  /// The name errors start with: a path, "<memory>", or "archive.npz: member 'a.npy'" for a window.
  const std::string& name() const { return name_; }
  std::uint64_t size() const { return size_; }

  /// Copies bytes [offset, offset + n) into `dst`. The range must lie inside the source (callers validate it
  /// against size() first and report the format error themselves); a file that shrank meanwhile raises
  /// FormatError.
  void read(std::uint64_t offset, std::uint64_t n, void* dst) const;
  std::string read_string(std::uint64_t offset, std::uint64_t n) const;

  /// The window [offset, offset + n) of this source, reporting errors under `name`.
  ByteSource slice(std::uint64_t offset, std::uint64_t n, std::string name) const;

 private:
  struct File;
  std::shared_ptr<const File> file_;  // null for memory
  std::string_view memory_;
  std::uint64_t base_ = 0;  // offset of this window in the file
  std::uint64_t size_ = 0;
  std::string name_;
};

/// Little-endian integers from raw bytes (the formats are little-endian whatever the host).
inline std::uint64_t load_le(const void* p, int bytes) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

}  // namespace pixel3dmm::io::detail
