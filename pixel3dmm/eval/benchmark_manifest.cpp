#include "pixel3dmm/eval/benchmark_manifest.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/tensor_json.h"

namespace pixel3dmm::eval {
namespace {

namespace fs = std::filesystem;

torch::Tensor landmarks_from_json(const io::json& j, const std::string& key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return {};
  const auto& a = j[key];
  PIXEL3DMM_CHECK_FORMAT(a.is_array() && a.size() == 7, where, "key '", key, "': expected 7 rows of 3 numbers");
  auto t = torch::empty({7, 3}, torch::kFloat);
  for (int i = 0; i < 7; ++i) {
    PIXEL3DMM_CHECK_FORMAT(a[i].is_array() && a[i].size() == 3, where, "key '", key, "' row ", i,
                           ": expected 3 numbers");
    for (int k = 0; k < 3; ++k) {
      PIXEL3DMM_CHECK_FORMAT(a[i][k].is_number() && std::isfinite(a[i][k].get<double>()), where, "key '", key, "' row ",
                             i, ": expected finite numbers");
      t[i][k] = a[i][k].get<double>();
    }
  }
  return t;
}

}  // namespace

std::string Benchmark::resolve(const std::string& path) const {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(folder) / path).string();
}

Benchmark read_benchmark(const std::string& path) {
  const fs::path p(path);
  const fs::path file = fs::is_directory(p) ? p / "cases.jsonl" : p;
  PIXEL3DMM_CHECK_T(FileNotFound, fs::is_regular_file(file), file.string(),
                    ": no such benchmark manifest (expected a folder with cases.jsonl, or a .jsonl file)");
  Benchmark b;
  b.folder = file.parent_path().string();
  if (b.folder.empty()) b.folder = ".";
  const fs::path meta = file.parent_path() / "benchmark.json";
  if (fs::exists(meta)) {
    const io::json m = io::read_json(meta.string());
    b.flame = m.value("flame", std::string());
  }
  std::ifstream in(file);
  PIXEL3DMM_CHECK_T(FileNotFound, in.good(), file.string(), ": cannot open");
  std::string line;
  std::set<std::string> names;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file.string() + " line " + std::to_string(number);
    io::json j;
    try {
      j = io::json::parse(line);
    } catch (const std::exception& e) {
      throw FormatError(where + ": not valid JSON (" + e.what() + ")");
    }
    PIXEL3DMM_CHECK_FORMAT(j.is_object(), where, "expected a JSON object per line");
    BenchmarkCase c;
    for (auto [key, field] : {std::pair{"name", &c.name}, {"gt_posed", &c.gt_posed}, {"gt_neutral", &c.gt_neutral}}) {
      PIXEL3DMM_CHECK_FORMAT(j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty(), where,
                             "missing required key '", key, "' (a non-empty string)");
      *field = j[key].get<std::string>();
    }
    for (auto [key, field] : {std::pair{"fit_inputs", &c.fit_inputs}, {"image", &c.image}}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      PIXEL3DMM_CHECK_FORMAT(j[key].is_string(), where, "key '", key, "': expected a string");
      *field = j[key].get<std::string>();
    }
    // The name becomes output file names (meshes/<name>_posed.ply): "../x" would write outside the output folder.
    PIXEL3DMM_CHECK_FORMAT(
        c.name != "." && c.name != ".." && c.name.find_first_of(std::string("/\\\0", 3)) == std::string::npos, where,
        "case name '", c.name, "' must be a plain file name (no '/', '\\', '..')");
    c.landmarks_posed = landmarks_from_json(j, "landmarks_posed", where);
    c.landmarks_neutral = landmarks_from_json(j, "landmarks_neutral", where);
    PIXEL3DMM_CHECK_FORMAT(names.insert(c.name).second, where, "duplicate case name '", c.name, "'");
    b.cases.push_back(std::move(c));
  }
  PIXEL3DMM_CHECK_FORMAT(!b.cases.empty(), file.string(), "the manifest lists no cases");
  return b;
}

void write_manifest(const std::string& folder, const std::vector<BenchmarkCase>& cases) {
  fs::create_directories(folder);
  std::ostringstream out;
  for (const auto& c : cases) {
    io::json j = {{"name", c.name}, {"gt_posed", c.gt_posed}, {"gt_neutral", c.gt_neutral}};
    if (!c.fit_inputs.empty()) j["fit_inputs"] = c.fit_inputs;
    if (!c.image.empty()) j["image"] = c.image;
    if (c.landmarks_posed.defined()) j["landmarks_posed"] = io::tensor_to_json(c.landmarks_posed);
    if (c.landmarks_neutral.defined()) j["landmarks_neutral"] = io::tensor_to_json(c.landmarks_neutral);
    out << j.dump() << "\n";
  }
  write_file_atomically((fs::path(folder) / "cases.jsonl").string(), out.str());
}

}  // namespace pixel3dmm::eval
