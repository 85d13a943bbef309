// safetensors: round trips of every dtype, the written layout, and one error per way a file can be corrupt.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/safetensors.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::io;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

// A tensor of every supported dtype with values that exercise the whole byte (signs, fractions).
TensorMap every_dtype(int64_t seed) {
  torch::manual_seed(seed);
  const auto f = torch::randn({3, 4}, torch::kDouble) * 100;
  return {{"f64", f},
          {"f32", f.to(torch::kFloat)},
          {"f16", f.to(torch::kHalf)},
          {"bf16", f.to(torch::kBFloat16)},
          {"i64", torch::randint(-(int64_t(1) << 62), int64_t(1) << 62, {5}, torch::kLong)},
          {"i32", torch::randint(-(1 << 30), 1 << 30, {2, 3}, torch::kInt)},
          {"i16", torch::randint(-32768, 32767, {7}, torch::kShort)},
          {"i8", torch::randint(-128, 127, {2, 2, 2}, torch::kChar)},
          {"u8", torch::randint(0, 255, {9}, torch::kByte)},
          {"bool", torch::rand({4, 1}) > 0.5},
          {"scalar", torch::tensor(3.5)},
          {"empty", torch::zeros({0, 3}, torch::kInt)},
          {"strided", f.to(torch::kFloat).t()},  // non-contiguous input
          {"sliced", torch::arange(20, torch::kLong).slice(0, 1, 20, 3)}};
}

void require_same(const TensorMap& a, const TensorMap& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [key, t] : a) {
    INFO("tensor " << key);
    REQUIRE(b.count(key) == 1);
    const torch::Tensor& u = b.at(key);
    REQUIRE(u.scalar_type() == t.scalar_type());
    REQUIRE(u.sizes() == t.sizes());
    REQUIRE(u.is_contiguous());
    REQUIRE(u.equal(t));
  }
}

// A safetensors file from a header text and a data section, exactly as given (no validation, no padding).
std::string raw_file(const std::string& header, const std::string& data = std::string(64, '\0')) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string raw_file_with_length(std::uint64_t length, const std::string& rest) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out + rest;
}

void require_format_error(const std::string& bytes, std::initializer_list<std::string> fragments) {
  require_throws_with<FormatError>([&] { parse_safetensors(bytes, "bad.safetensors"); }, fragments);
}

}  // namespace

TEST_CASE("safetensors round trips every dtype, scalars, empty and strided tensors", "[io][safetensors]") {
  TempDir dir;
  const TensorMap tensors = every_dtype(0);
  const Metadata metadata{{"format", "pt"}, {"note", "h\xc3\xa9llo \"quoted\""}};
  write_safetensors(dir.file("all.safetensors"), tensors, metadata);
  const SafetensorsFile file = read_safetensors(dir.file("all.safetensors"));
  require_same(tensors, file.tensors);
  REQUIRE(file.metadata == metadata);
  REQUIRE(read_safetensors_metadata(dir.file("all.safetensors")) == metadata);

  const SafetensorsFile mem = parse_safetensors(serialize_safetensors(tensors, metadata));
  require_same(tensors, mem.tensors);
  REQUIRE(read_file(dir.file("all.safetensors")) == serialize_safetensors(tensors, metadata));

  // No tensors, no metadata: a valid file of an empty header.
  const SafetensorsFile none = parse_safetensors(serialize_safetensors({}));
  REQUIRE(none.tensors.empty());
  REQUIRE(none.metadata.empty());
}

TEST_CASE("safetensors are written with sorted keys, space padding and aligned data", "[io][safetensors]") {
  const TensorMap tensors{{"b_bytes", torch::ones({3}, torch::kByte)},
                          {"a_double", torch::ones({2}, torch::kDouble)},
                          {"c_half", torch::ones({1}, torch::kHalf)}};
  const std::string bytes = serialize_safetensors(tensors, {{"k", "v"}});
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  REQUIRE(n % 8 == 0);
  const std::string header = bytes.substr(8, n);
  REQUIRE(header.find_last_not_of(' ') < header.size() - 1);  // padding is spaces...
  REQUIRE(header[header.find_last_not_of(' ')] == '}');       // ...after the JSON object
  // Keys sorted: "__metadata__" sorts after upper case, before lower case.
  REQUIRE(header.find("\"__metadata__\"") < header.find("\"a_double\""));
  REQUIRE(header.find("\"a_double\"") < header.find("\"b_bytes\""));
  REQUIRE(header.find("\"b_bytes\"") < header.find("\"c_half\""));
  // Larger elements first, so each tensor starts at a multiple of its element size.
  const auto j = nlohmann::json::parse(header);
  REQUIRE(j["a_double"]["data_offsets"] == nlohmann::json::array({0, 16}));
  REQUIRE(j["c_half"]["data_offsets"] == nlohmann::json::array({16, 18}));
  REQUIRE(j["b_bytes"]["data_offsets"] == nlohmann::json::array({18, 21}));
  REQUIRE(bytes.size() == 8 + n + 21);
}

TEST_CASE("safetensors reads a file laid out by hand from the specification", "[io][safetensors]") {
  // Two I32 values 1, -2 and one BF16 1.5 (0x3fc0), metadata, unused bytes after the data (allowed by the spec),
  // a BOOL byte that is neither 0 nor 1 (read as true).
  const std::string header = R"({"__metadata__":{"who":"hand"},"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},)"
                             R"("y":{"dtype":"BF16","shape":[],"data_offsets":[8,10]},)"
                             R"("z":{"dtype":"BOOL","shape":[1],"data_offsets":[10,11]}})";
  const std::string data("\x01\x00\x00\x00\xfe\xff\xff\xff\xc0\x3f\x07unused", 17);
  const SafetensorsFile f = parse_safetensors(raw_file(header, data));
  REQUIRE(f.metadata.at("who") == "hand");
  REQUIRE(f.tensors.at("x").equal(torch::tensor({1, -2}, torch::kInt)));
  REQUIRE(f.tensors.at("y").dim() == 0);
  REQUIRE(f.tensors.at("y").item<float>() == 1.5f);
  REQUIRE(f.tensors.at("z").scalar_type() == torch::kBool);
  REQUIRE(f.tensors.at("z").item<bool>());
}

TEST_CASE("safetensors: a file too short for the header length", "[io][safetensors][corrupt]") {
  TempDir dir;
  const std::string path = dir.file("short.safetensors");
  write_file_atomically(path, std::string("\x10\x00\x00\x00\x00", 5));
  require_throws_with<FormatError>([&] { read_safetensors(path); }, {path, "expected at least 8 bytes, found 5"});
}

TEST_CASE("safetensors: a header length past the end of the file", "[io][safetensors][corrupt]") {
  require_format_error(
      raw_file_with_length(1000, "{}"),
      {"bad.safetensors", "header length runs past the end of the file", "expected at most 2 bytes, found 1000"});
}

TEST_CASE("safetensors: an absurd header length is refused before reading", "[io][safetensors][corrupt]") {
  require_format_error(raw_file_with_length(std::uint64_t(1) << 60, "{}"),
                       {"header length is absurd", "expected at most 100000000 bytes", "found 1152921504606846976"});
}

TEST_CASE("safetensors: a header that is not JSON or not an object", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"x": {"dtype": "F32",)"), {"bad.safetensors", "header is not valid JSON"});
  require_format_error(raw_file("[1, 2]"), {"header must be a JSON object, found array"});
  require_format_error(raw_file(R"({"x": 3})"), {"tensor 'x'", "expected an object", "found number"});
  require_format_error(raw_file(R"({"x": {"dtype": "F32", "shape": [1]}})"),
                       {"tensor 'x'", "missing field 'data_offsets'"});
}

TEST_CASE("safetensors: an unknown dtype string", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"w": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}})"),
                       {"bad.safetensors: tensor 'w'", "unknown dtype", "expected one of F64, F32", "found 'F8'"});
}

TEST_CASE("safetensors: a shape that is not a list of non-negative integers", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}})"),
                       {"tensor 'w'", "shape must be a list of non-negative integers", "found [2,-1]"});
  require_format_error(raw_file(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})"),
                       {"tensor 'w'", "found [2.5]"});
}

TEST_CASE("safetensors: data offsets past the end of the data section", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"w": {"dtype": "F32", "shape": [32], "data_offsets": [0, 128]}})"),
                       {"tensor 'w'", "run past the end of the data section", "expected end <= 64, found 128"});
  require_format_error(raw_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})"),
                       {"tensor 'w'", "data_offsets [8, 4] are reversed"});
}

TEST_CASE("safetensors: overlapping byte ranges", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                                R"( "b": {"dtype": "F64", "shape": [2], "data_offsets": [8, 24]}})"),
                       {"tensor 'b'", "[8, 24] overlap those of tensor 'a' [0, 16]"});
  // An empty tensor inside another's range occupies no bytes: not an overlap.
  const auto ok = parse_safetensors(raw_file(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                                             R"( "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})"));
  REQUIRE(ok.tensors.at("e").numel() == 0);
}

TEST_CASE("safetensors: a byte range that disagrees with shape x dtype", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})"),
                       {"tensor 'w'", "does not match shape [2, 3] x F32", "expected 24 bytes, found 20"});
}

TEST_CASE("safetensors: a huge declared shape fails before any allocation", "[io][safetensors][corrupt]") {
  // numel overflows 64 bits: must not wrap around to a small size.
  require_format_error(
      raw_file(R"({"w": {"dtype": "F32", "shape": [1000000000000, 1000000000000], "data_offsets": [0, 16]}})"),
      {"tensor 'w'", "shape [1000000000000, 1000000000000] x F32 is larger than 2^64 bytes"});
  // 8 TB that fits in 64 bits: refused by the file size, not by a failed 8 TB allocation (which would throw a
  // c10::Error, not a FormatError).
  require_format_error(
      raw_file(R"({"w": {"dtype": "F64", "shape": [1000000, 1000000], "data_offsets": [0, 8000000000000]}})"),
      {"tensor 'w'", "run past the end of the data section", "found 8000000000000"});
}

TEST_CASE("safetensors: a tensor name given twice", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},)"
                                R"( "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})"),
                       {"bad.safetensors: tensor 'w': appears twice in the header"});
  // The same key inside different tensors' objects is fine.
  REQUIRE(parse_safetensors(raw_file(R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},)"
                                     R"( "b": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})"))
              .tensors.size() == 2);
}

TEST_CASE("safetensors: metadata must map strings to strings", "[io][safetensors][corrupt]") {
  require_format_error(raw_file(R"({"__metadata__": {"epoch": 3}})"),
                       {"__metadata__ 'epoch'", "expected a string, found 3"});
}

TEST_CASE("safetensors: a truncated data section", "[io][safetensors][corrupt]") {
  TempDir dir;
  const std::string path = dir.file("cut.safetensors");
  const std::string full = serialize_safetensors({{"v", torch::ones({100})}});
  write_file_atomically(path, full.substr(0, full.size() - 10));
  require_throws_with<FormatError>(
      [&] { read_safetensors(path); },
      {path, "tensor 'v'", "run past the end of the data section", "expected end <= 390, found 400"});
}

TEST_CASE("safetensors: writer refusals leave no file behind", "[io][safetensors]") {
  TempDir dir;
  const std::string path = dir.file("out.safetensors");
  require_throws_with<ValueError>(
      [&] {
        write_safetensors(path, {{"__metadata__", torch::ones(1)}});
      },
      {"'__metadata__' is reserved"});
  require_throws_with<ValueError>(
      [&] {
        write_safetensors(path, {{"c", torch::ones(2, torch::kComplexFloat)}});
      },
      {"tensor 'c'", "ComplexFloat", "expected one of F64"});
  require_throws_with<ValueError>(
      [&] {
        write_safetensors(path, {{"x", torch::ones(1)}}, {{"k", "\xff"}});
      },
      {"not valid UTF-8"});
  REQUIRE_FALSE(std::filesystem::exists(path));
  require_throws_with<FileNotFound>([&] { read_safetensors(dir.file("missing.safetensors")); },
                                    {"missing.safetensors", "no such file"});
}
