// The limits of docs/reliability.md that guard against hostile files, in C++ (so that the sanitizer build runs
// them too): nesting depth of JSON configs, manifests and safetensors headers, and output names from manifests.
#include <fstream>

#include "pixel3dmm/eval/benchmark.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/train/dataset.h"
#include "test_util.h"

using namespace pixel3dmm;

namespace {

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

}  // namespace

TEST_CASE("read_json refuses nesting deeper than 64 levels and accepts 60", "[io][config][reliability]") {
  test::TempDir dir;
  write_text(dir.file("deep.json"), "{\"a\": " + nested(100000) + "}");
  test::require_throws_with<FormatError>([&] { io::read_json(dir.file("deep.json")); },
                                         {"deep.json", "JSON nested deeper than 64 levels"});
  write_text(dir.file("ok.json"), "{\"a\": " + nested(60) + "}");
  REQUIRE(io::read_json(dir.file("ok.json"))["a"].is_array());
}

TEST_CASE("safetensors headers nested deeper than 4 levels are refused", "[io][safetensors][reliability]") {
  const std::string header = "{\"__metadata__\": {\"a\": " + nested(50000) + "}}";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  bytes += header;
  test::require_throws_with<FormatError>([&] { io::parse_safetensors(bytes, "deep.safetensors"); },
                                         {"deep.safetensors", "nested deeper than 4 levels"});
}

TEST_CASE("manifest lines nested deeper than 8 levels are refused with the line", "[train][reliability]") {
  test::TempDir dir;
  write_text(dir.file("m.jsonl"), "{\"id\": \"a\", \"image\": \"i.png\", \"mesh\": \"m.ply\", \"camera\": " +
                                      nested(100000) + "}\n");
  test::require_throws_with<FormatError>([&] { train::Dataset::open(dir.file("m.jsonl")); },
                                         {"m.jsonl:1", "JSON nested deeper than 8 levels"});
}

TEST_CASE("benchmark case names cannot leave the output folder", "[eval][reliability]") {
  test::TempDir dir;
  for (const std::string name : {"../../escape", "a/b", "..", "a\\\\b"}) {
    INFO(name);
    write_text(dir.file("cases.jsonl"),
               "{\"name\": \"" + name + "\", \"gt_posed\": \"p.ply\", \"gt_neutral\": \"n.ply\"}\n");
    test::require_throws_with<FormatError>([&] { eval::read_benchmark(dir.path.string()); },
                                           {"cases.jsonl line 1", "must be a plain file name"});
  }
  write_text(dir.file("cases.jsonl"), "{\"name\": \"a..b\", \"gt_posed\": \"p.ply\", \"gt_neutral\": \"n.ply\"}\n");
  REQUIRE(eval::read_benchmark(dir.path.string()).cases.at(0).name == "a..b");
}

TEST_CASE("a number beyond double's range is a format error naming the file", "[io][config][reliability]") {
  // Found by fuzz_config: nlohmann throws out_of_range (406), not parse_error, which escaped read_json.
  test::TempDir dir;
  write_text(dir.file("big.json"), "{\"a\": [1, -3e3192]}");
  test::require_throws_with<FormatError>([&] { io::read_json(dir.file("big.json")); },
                                         {"big.json", "invalid JSON", "number overflow"});
  const std::string header = "{\"__metadata__\": {\"a\": 1e999}}";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  test::require_throws_with<FormatError>([&] { io::parse_safetensors(bytes + header, "big.safetensors"); },
                                         {"big.safetensors", "not valid JSON"});
}
