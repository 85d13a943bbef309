#pragma once
/// The subset of ZIP (PKWARE APPNOTE 6.3) that .npz archives use: stored and deflated members, ZIP64 sizes and
/// offsets, one disk, no encryption.

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "pixel3dmm/io/detail/byte_source.h"

namespace pixel3dmm::io::detail {

struct ZipMember {
  std::string name;  // UTF-8: names without the UTF-8 flag are decoded from code page 437, as Python's zipfile does
  std::uint16_t method = 0;  // 0 stored, 8 deflated
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t data_offset = 0;  // of the member's (compressed) bytes, past its local header
};

/// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);

/// Reads and validates the central directory and every member's local header: record signatures, that the
/// directory and each member's bytes lie inside the file, the method, no encryption, no duplicate names.
/// Throws FormatError naming the archive (and the member).
std::vector<ZipMember> read_zip_directory(const ByteSource& zip);

/// The member's uncompressed bytes with its CRC-32 checked. A deflated member is inflated into a buffer that
/// grows only as output is actually produced and never past the declared size, which is itself first checked
/// against deflate's largest possible expansion (1032:1) of the compressed size.
std::string read_zip_member(const ByteSource& zip, const ZipMember& member);

/// Writes a ZIP archive member by member to an open file (as Python's zipfile does for np.savez). Members need
/// ZIP64 records only past 4 GiB; `force_zip64` writes them for every member (as numpy does), so readers are
/// tested on them.
class ZipWriter {
 public:
  /// `name` (the destination path) prefixes error messages.
  ZipWriter(std::FILE* file, std::string name, bool force_zip64 = false);

  /// Adds a member whose content is the concatenation of `parts` (an .npy header and the raw array bytes, which
  /// are therefore never copied into one buffer), deflated (raw deflate, zlib's default level) or stored.
  void add(const std::string& member_name, std::initializer_list<std::string_view> parts, bool deflate);

  /// Writes the central directory and the end records. Call once, after the last add().
  void finish();

 private:
  void put(const void* data, std::uint64_t n);
  std::FILE* file_;
  std::string name_;
  bool force_zip64_;
  std::uint64_t offset_ = 0;  // bytes written so far
  std::vector<ZipMember> members_;
  std::vector<std::uint64_t> header_offsets_;
};

}  // namespace pixel3dmm::io::detail
