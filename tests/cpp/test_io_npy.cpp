// .npy and .npz: round trips, files laid out by hand from the format specifications (Fortran order, big endian,
// versions 2 and 3, ZIP64), and one error per way a file can be corrupt.
#include <cstring>
#include <filesystem>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/detail/zip.h"
#include "pixel3dmm/io/npy.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::io;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

TensorMap every_numpy_dtype() {
  torch::manual_seed(1);
  const auto f = torch::randn({3, 4}, torch::kDouble) * 100;
  return {{"f64", f},
          {"f32", f.to(torch::kFloat)},
          {"f16", f.to(torch::kHalf)},
          {"i64", torch::randint(-(int64_t(1) << 62), int64_t(1) << 62, {5}, torch::kLong)},
          {"i32", torch::randint(-(1 << 30), 1 << 30, {2, 3}, torch::kInt)},
          {"i16", torch::randint(-32768, 32767, {7}, torch::kShort)},
          {"i8", torch::randint(-128, 127, {2, 2, 2}, torch::kChar)},
          {"u8", torch::randint(0, 255, {9}, torch::kByte)},
          {"bool", torch::rand({4, 1}) > 0.5},
          {"scalar", torch::tensor(-2.25)},
          {"empty", torch::zeros({3, 0}, torch::kShort)},
          {"strided", f.to(torch::kFloat).t()}};
}

void require_same(const torch::Tensor& expected, const torch::Tensor& found) {
  REQUIRE(found.scalar_type() == expected.scalar_type());
  REQUIRE(found.sizes() == expected.sizes());
  REQUIRE(found.is_contiguous());
  REQUIRE(found.equal(expected));
}

void require_same(const TensorMap& a, const TensorMap& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [key, t] : a) {
    INFO("array " << key);
    REQUIRE(b.count(key) == 1);
    require_same(t, b.at(key));
  }
}

// A .npy file from a header dict and raw data, padded the way numpy pads (version 1, 2 or 3).
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  const size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T>
std::string raw(std::initializer_list<T> values, bool big_endian = false) {
  std::string out;
  for (T v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    if (big_endian) std::reverse(b, b + sizeof(T));
    out.append(b, sizeof(T));
  }
  return out;
}

void require_npy_error(const std::string& bytes, std::initializer_list<std::string> fragments) {
  require_throws_with<FormatError>([&] { parse_npy(bytes, "bad.npy"); }, fragments);
}

// Bitwise CRC-32 (IEEE, reflected): an implementation independent of zlib's for the hand-built archives.
std::uint32_t crc32_reference(const std::string& s) {
  std::uint32_t c = 0xffffffffu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

struct Bytes {
  std::string s;
  Bytes& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    return *this;
  }
  Bytes& add(const std::string& t) {
    s += t;
    return *this;
  }
};

// Offset of the first record with this signature (a one-member archive has one of each).
size_t find_sig(const std::string& zip, const char* sig) {
  const size_t at = zip.find(std::string(sig, 4));
  REQUIRE(at != std::string::npos);
  return at;
}

void put_le32(std::string& s, size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void require_npz_error(const std::string& bytes, std::initializer_list<std::string> fragments) {
  require_throws_with<FormatError>([&] { parse_npz(bytes, "bad.npz"); }, fragments);
}

std::string npz_bytes(const TensorMap& arrays, bool compress) {
  TempDir dir;
  write_npz(dir.file("a.npz"), arrays, compress);
  return read_file(dir.file("a.npz"));
}

}  // namespace

TEST_CASE("npy round trips every dtype, scalars, empty and strided arrays", "[io][npy]") {
  TempDir dir;
  for (const auto& [key, t] : every_numpy_dtype()) {
    INFO("array " << key);
    write_npy(dir.file(key + ".npy"), t);
    require_same(t, read_npy(dir.file(key + ".npy")));
    require_same(t, parse_npy(serialize_npy(t)));
  }
}

TEST_CASE("npy headers are laid out as numpy writes them", "[io][npy]") {
  const std::string bytes = serialize_npy(torch::zeros({2, 3}, torch::kFloat));
  REQUIRE(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  REQUIRE((10 + header_len) % 64 == 0);
  REQUIRE(bytes.substr(10, header_len).rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0) == 0);
  REQUIRE(bytes[10 + header_len - 1] == '\n');
  REQUIRE(bytes.size() == 10 + header_len + 24);
  REQUIRE(serialize_npy(torch::zeros({5}, torch::kBool)).find("'|b1', 'fortran_order': False, 'shape': (5,), }") !=
          std::string::npos);
  REQUIRE(serialize_npy(torch::tensor(1.0)).find("'shape': (), }") != std::string::npos);
  require_throws_with<ValueError>([] { serialize_npy(torch::ones(2, torch::kBFloat16)); },
                                  {"BFloat16 has no NumPy equivalent"});
}

TEST_CASE("npy reads Fortran order, big endian, versions 2 and 3, unsigned and Python 2 headers", "[io][npy]") {
  // [[1, 2, 3], [4, 5, 6]] stored column by column.
  const auto fortran = parse_npy(
      npy_file("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", raw<int32_t>({1, 4, 2, 5, 3, 6})));
  require_same(torch::tensor({1, 2, 3, 4, 5, 6}, torch::kInt).reshape({2, 3}), fortran);
  // A 3-d Fortran array: element (i, j, k) sits at i + 2j + 4k.
  std::vector<int16_t> column_major(2 * 2 * 3);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) column_major[i + 2 * j + 4 * k] = static_cast<int16_t>(100 * i + 10 * j + k);
  const auto f3 = parse_npy(npy_file("{'descr': '<i2', 'fortran_order': True, 'shape': (2, 2, 3), }",
                                     std::string(reinterpret_cast<const char*>(column_major.data()), 24)));
  REQUIRE(f3.sizes() == c10::IntArrayRef{2, 2, 3});
  REQUIRE(f3[1][0][2].item<int>() == 102);
  REQUIRE(f3[0][1][1].item<int>() == 11);

  require_same(
      torch::tensor({1.5, -2.0}, torch::kDouble),
      parse_npy(npy_file("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", raw<double>({1.5, -2.0}, true))));
  require_same(torch::tensor({-3, 70000}, torch::kInt),
               parse_npy(npy_file("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
                                  raw<int32_t>({-3, 70000}, true))));
  // Big-endian Fortran: both conversions.
  require_same(torch::tensor({1, 2, 3, 4}, torch::kShort).reshape({2, 2}),
               parse_npy(npy_file("{'descr': '>i2', 'fortran_order': True, 'shape': (2, 2), }",
                                  raw<int16_t>({1, 3, 2, 4}, true))));
  require_same(torch::tensor({7.f}),
               parse_npy(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", raw<float>({7.f}), 2)));
  require_same(torch::tensor({8.f}), parse_npy(npy_file("{\"descr\": \"<f4\", \"fortran_order\": False, "
                                                        "\"shape\": (1,)}",
                                                        raw<float>({8.f}), 3)));
  // Unsigned 16/32-bit widen to the next signed type with their values intact.
  require_same(
      torch::tensor({0, 65535}, torch::kInt),
      parse_npy(npy_file("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", raw<uint16_t>({0, 65535}))));
  require_same(torch::tensor({int64_t(4294967295LL), int64_t(1)}, torch::kLong),
               parse_npy(npy_file("{'descr': '>u4', 'fortran_order': False, 'shape': (2,), }",
                                  raw<uint32_t>({4294967295u, 1u}, true))));
  // Python 2 wrote long integers with an L; a bool byte of 2 still reads as true.
  require_same(torch::tensor({true, false, true}).reshape({1, 3}),
               parse_npy(npy_file("{'descr': '|b1', 'fortran_order': False, 'shape': (1L, 3L), }",
                                  std::string("\x01\x00\x02", 3))));
}

TEST_CASE("npy: bad magic", "[io][npy][corrupt]") {
  TempDir dir;
  const std::string path = dir.file("not.npy");
  write_file_atomically(path, "PK\x03\x04 this is a zip, not an npy");
  require_throws_with<FormatError>([&] { read_npy(path); },
                                   {path, "not a .npy file (bad magic)", "expected \\x93NUMPY, found PK\\x03\\x04 t"});
  require_npy_error("\x93NUM", {"bad.npy", "expected at least 10 bytes, found 4"});
}

TEST_CASE("npy: object arrays and structured dtypes are refused with their descr", "[io][npy][corrupt]") {
  require_npy_error(npy_file("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')),
                    {"bad.npy", "object arrays are not supported", "found descr '|O'"});
  require_npy_error(npy_file("{'descr': [('x', '<f4'), ('y', '<i4')], 'fortran_order': False, 'shape': (2,), }",
                             std::string(16, '\0')),
                    {"bad.npy", "structured dtypes are not supported", "found descr [('x', '<f4'), ('y', '<i4')]"});
  require_npy_error(npy_file("{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')),
                    {"uint64 has no lossless torch dtype", "found descr '<u8'"});
  require_npy_error(npy_file("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')),
                    {"unsupported dtype", "expected one of '<f8'", "found descr '<c8'"});
}

TEST_CASE("npy: truncated data and trailing bytes", "[io][npy][corrupt]") {
  const std::string full = serialize_npy(torch::arange(10, torch::kFloat));
  require_npy_error(full.substr(0, full.size() - 3),
                    {"bad.npy", "data is truncated", "expected 40 bytes for shape [10] '<f4', found 37"});
  require_npy_error(full + "more", {"trailing bytes", "expected 40 bytes", "found 44"});
}

TEST_CASE("npy: a huge declared shape fails before any allocation", "[io][npy][corrupt]") {
  require_npy_error(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }", ""),
                    {"shape [1000000000000, 1000000000000] x '<f8' is larger than 2^64 bytes"});
  // 8 TB fits in 64 bits; the size check against the file must come before the allocation (a failed allocation
  // would throw c10::Error, not FormatError).
  require_npy_error(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }", "12345678"),
                    {"data is truncated", "expected 8000000000000 bytes", "found 8"});
}

TEST_CASE("npy: bad versions, header lengths and header literals", "[io][npy][corrupt]") {
  std::string v4 = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", raw<float>({1.f}));
  v4[6] = 4;
  require_npy_error(v4, {"unsupported .npy format version", "expected 1.0, 2.0 or 3.0, found 4.0"});
  std::string long_header = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", raw<float>({1.f}));
  long_header[8] = '\xff';
  long_header[9] = '\x7f';
  require_npy_error(long_header, {"header length runs past the end of the file", "found 32767"});
  require_npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,, }", ""),
                    {"header is not a valid Python literal"});
  require_npy_error(npy_file("{'descr': '<f4', 'shape': (), 'other': 1}", raw<float>({1.f})),
                    {"header lacks the key 'fortran_order'"});
  require_npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", ""),
                    {"shape must be a tuple of non-negative integers, found (2, -1)"});
  require_npy_error(npy_file("{'descr': '<f4', 'fortran_order': 0, 'shape': (), }", raw<float>({1.f})),
                    {"fortran_order must be True or False, found 0"});
  require_npy_error(npy_file(std::string(100, '(') + std::string(100, ')'), ""), {"nesting too deep"});
}

TEST_CASE("npz round trips every dtype, stored and deflated", "[io][npz]") {
  TempDir dir;
  const TensorMap arrays = every_numpy_dtype();
  for (const bool compress : {false, true}) {
    INFO("compress " << compress);
    const std::string path = dir.file(compress ? "c.npz" : "s.npz");
    write_npz(path, arrays, compress);
    require_same(arrays, read_npz(path));
  }
  // Zeros deflate to far less than they store.
  const TensorMap zeros{{"z", torch::zeros({100000})}};
  REQUIRE(npz_bytes(zeros, true).size() * 50 < npz_bytes(zeros, false).size());
  REQUIRE(read_npz(dir.file("s.npz")).size() == arrays.size());
  // An empty archive is valid.
  write_npz(dir.file("none.npz"), {});
  REQUIRE(read_npz(dir.file("none.npz")).empty());
}

TEST_CASE("npz reads ZIP64 records: from its own forced writer and laid out by hand", "[io][npz]") {
  TempDir dir;
  const torch::Tensor t = torch::arange(12, torch::kInt).reshape({3, 4});
  const std::string npy = serialize_npy(t);
  for (const bool deflate : {false, true}) {
    const std::string path = dir.file("z64.npz");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    io::detail::ZipWriter zip(f, path, /*force_zip64=*/true);
    zip.add("t.npy", {npy.substr(0, 7), npy.substr(7)}, deflate);
    zip.add("u.npy", {npy}, deflate);
    zip.finish();
    std::fclose(f);
    const std::string bytes = read_file(path);
    REQUIRE(bytes.find(std::string("PK\x06\x06", 4)) != std::string::npos);  // the ZIP64 end record is there
    const TensorMap read = read_npz(path);
    require_same(t, read.at("t"));
    require_same(t, read.at("u"));
  }

  // By hand from APPNOTE 4.5.3: every 32-bit size and offset is 0xffffffff and the ZIP64 extra fields hold them.
  const std::uint32_t crc = crc32_reference(npy);
  const std::string name = "hand.npy";
  Bytes zip;
  zip.le(0x04034b50, 4).le(45, 2).le(0, 2).le(0, 2).le(0, 4).le(crc, 4).le(0xffffffff, 4).le(0xffffffff, 4);
  zip.le(name.size(), 2).le(20, 2).add(name).le(1, 2).le(16, 2).le(npy.size(), 8).le(npy.size(), 8).add(npy);
  const size_t directory = zip.s.size();
  zip.le(0x02014b50, 4).le(45, 2).le(45, 2).le(0, 2).le(0, 2).le(0, 4).le(crc, 4).le(0xffffffff, 4);
  zip.le(0xffffffff, 4).le(name.size(), 2).le(28, 2).le(0, 2).le(0, 2).le(0, 2).le(0, 4).le(0xffffffff, 4);
  zip.add(name).le(1, 2).le(24, 2).le(npy.size(), 8).le(npy.size(), 8).le(0, 8);
  const size_t directory_size = zip.s.size() - directory, end64 = zip.s.size();
  zip.le(0x06064b50, 4).le(44, 8).le(45, 2).le(45, 2).le(0, 4).le(0, 4).le(1, 8).le(1, 8);
  zip.le(directory_size, 8).le(directory, 8);
  zip.le(0x07064b50, 4).le(0, 4).le(end64, 8).le(1, 4);
  zip.le(0x06054b50, 4).le(0, 2).le(0, 2).le(0xffff, 2).le(0xffff, 2).le(0xffffffff, 4).le(0xffffffff, 4).le(0, 2);
  require_same(t, parse_npz(zip.s).at("hand"));
}

TEST_CASE("npz: a CRC-32 mismatch", "[io][npz][corrupt]") {
  std::string zip = npz_bytes({{"w", torch::arange(16, torch::kFloat)}}, false);
  zip[find_sig(zip, "PK\x01\x02") - 5] ^= 0x01;  // a byte of the stored array data
  require_npz_error(zip, {"bad.npz: member 'w.npy'", "CRC-32 mismatch", "expected 0x", "found 0x"});
}

TEST_CASE("npz: a truncated archive and a central directory past its end", "[io][npz][corrupt]") {
  const std::string zip = npz_bytes({{"w", torch::arange(16, torch::kFloat)}}, true);
  const size_t directory = find_sig(zip, "PK\x01\x02");
  require_npz_error(zip.substr(0, directory + 20),
                    {"bad.npz", "not a ZIP archive or truncated", "no end of central directory record"});
  // The end record's directory size claims more than there is.
  std::string grown = zip;
  put_le32(grown, find_sig(grown, "PK\x05\x06") + 12, 10000);
  require_npz_error(grown, {"bad.npz", "central directory [", "runs past its end record", "truncated or corrupt"});
  // Entry count larger than the directory could hold.
  std::string counted = zip;
  const size_t end = find_sig(counted, "PK\x05\x06");
  counted[end + 8] = counted[end + 10] = '\x09';
  require_npz_error(counted, {"cannot hold the 9 entries it declares"});
  require_npz_error("just some text that is no zip", {"bad.npz", "not a ZIP archive"});
}

TEST_CASE("npz: a member declared huge is refused before inflating", "[io][npz][corrupt]") {
  std::string zip = npz_bytes({{"w", torch::zeros({1000})}}, true);
  const size_t entry = find_sig(zip, "PK\x01\x02");
  put_le32(zip, entry + 24, 0xfffffff0u);  // uncompressed size
  require_npz_error(zip, {"member 'w.npy'", "declared uncompressed size is impossible", "found 4294967280"});
}

TEST_CASE("npz: deflated data that disagrees with its declared size", "[io][npz][corrupt]") {
  const std::string good = npz_bytes({{"w", torch::arange(1000, torch::kFloat)}}, true);
  const size_t entry = find_sig(good, "PK\x01\x02");
  const std::uint32_t size = static_cast<unsigned char>(good[entry + 24]) | static_cast<unsigned char>(good[entry + 25])
                                                                                << 8;
  std::string smaller = good;
  put_le32(smaller, entry + 24, size - 1);
  require_npz_error(smaller, {"member 'w.npy'", "inflates to more than the declared"});
  std::string larger = good;
  put_le32(larger, entry + 24, size + 1);
  require_npz_error(larger, {"member 'w.npy'", "inflates to", "expected the declared"});
  // Garbage in the deflate stream.
  std::string garbage = good;
  const size_t data = find_sig(good, "PK\x03\x04") + 30 + 5;
  for (size_t i = data; i < data + 8; ++i) garbage[i] = '\xff';
  require_npz_error(garbage, {"member 'w.npy'", "corrupt deflate data"});
}

TEST_CASE("npz: unsupported methods, encryption and bad members name the member", "[io][npz][corrupt]") {
  std::string zip = npz_bytes({{"w", torch::ones({4})}}, false);
  std::string method = zip;
  method[find_sig(method, "PK\x01\x02") + 10] = 12;  // bzip2
  require_npz_error(method, {"member 'w.npy'", "compression method not supported", "found 12"});
  std::string encrypted = zip;
  encrypted[find_sig(encrypted, "PK\x01\x02") + 8] = 1;
  require_npz_error(encrypted, {"member 'w.npy'", "encrypted members are not supported"});
  // A member whose CRC is right but whose content is an object array: the .npy error names archive and member.
  TempDir dir;
  const std::string path = dir.file("objects.npz");
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  io::detail::ZipWriter writer(f, path);
  writer.add("o.npy", {npy_file("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0'))},
             false);
  writer.finish();
  std::fclose(f);
  require_throws_with<FormatError>([&] { read_npz(path); },
                                   {path + ": member 'o.npy': object arrays are not supported", "found descr '|O'"});
}

TEST_CASE("npz member names: UTF-8 when flagged, else code page 437 (as Python's zipfile)", "[io][npz]") {
  TempDir dir;
  const std::string path = dir.file("names.npz");
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  io::detail::ZipWriter writer(f, path);
  writer.add("caf\x82.npy", {serialize_npy(torch::ones(1))}, false);  // not UTF-8, yet non-ASCII: flagged UTF-8
  writer.finish();
  std::fclose(f);
  std::string zip = read_file(path);
  require_npz_error(zip, {"bad.npz", "flagged UTF-8 but is not valid UTF-8"});
  zip[find_sig(zip, "PK\x01\x02") + 9] = 0;  // clear the UTF-8 flag: 0x82 is 'e acute' in code page 437
  REQUIRE(parse_npz(zip).count("caf\xc3\xa9") == 1);
  require_throws_with<ValueError>(
      [&] {
        write_npz(dir.file("x.npz"), {{"\xff", torch::ones(1)}});
      },
      {"is not valid UTF-8"});
  REQUIRE(io::detail::is_valid_utf8("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"})
    REQUIRE_FALSE(io::detail::is_valid_utf8(bad));
}

TEST_CASE("npz: writer refusals leave no file behind", "[io][npz]") {
  TempDir dir;
  const std::string path = dir.file("out.npz");
  require_throws_with<ValueError>(
      [&] {
        write_npz(path, {{"a", torch::ones(2)}, {"b", torch::ones(2, torch::kBFloat16)}});
      },
      {path, "array 'b'", "BFloat16 has no NumPy equivalent"});
  REQUIRE_FALSE(std::filesystem::exists(path));
  require_throws_with<ValueError>([&] { write_npy(path, torch::ones(2, torch::kComplexFloat)); },
                                  {path, "ComplexFloat has no NumPy equivalent"});
  REQUIRE_FALSE(std::filesystem::exists(path));
  require_throws_with<FileNotFound>([&] { read_npz(dir.file("missing.npz")); }, {"missing.npz", "no such file"});
}
