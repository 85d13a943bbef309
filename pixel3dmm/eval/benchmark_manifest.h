#pragma once
/// A benchmark's manifest. A benchmark folder holds `cases.jsonl` (one JSON object per line):
///   {"name": "case_000", "gt_posed": "case_000/gt_posed.ply", "gt_neutral": "case_000/gt_neutral.ply",
///    "fit_inputs": "case_000/fit_inputs", "image": "case_000/fit_inputs/crop.png",
///    "landmarks_posed": [[x, y, z] x 7], "landmarks_neutral": [[x, y, z] x 7]}
/// name, gt_posed and gt_neutral are required; paths are relative to the folder; the landmarks (metres, NoW order)
/// are needed only for ground-truth meshes without FLAME topology (scans). `benchmark.json` beside it records how
/// the benchmark was made (generator, seed, FLAME model; optional).

#include <torch/types.h>

#include <string>
#include <vector>

namespace pixel3dmm::eval {

struct BenchmarkCase {
  std::string name;
  std::string gt_posed, gt_neutral;  ///< ground-truth meshes (absolute or relative to the manifest's folder)
  std::string fit_inputs;            ///< a fit-inputs folder (reconstruct/fit_inputs.h), for our fits; optional
  std::string image;                 ///< the photo (a face crop), for methods that start from pixels; optional
  torch::Tensor landmarks_posed, landmarks_neutral;  ///< 7 x 3 float32 NoW landmarks of the truth; optional
};

struct Benchmark {
  std::string folder;  ///< the manifest's folder; case paths are resolved against it
  std::string flame;   ///< FLAME model the benchmark was made with ("" = the synthetic model), from benchmark.json
  std::vector<BenchmarkCase> cases;
  /// A case's path resolved against `folder` (empty stays empty).
  std::string resolve(const std::string& path) const;
};

/// Reads a manifest: a benchmark folder (its cases.jsonl) or a .jsonl file. Throws FileNotFound for a missing
/// file, FormatError naming file, line and key for a malformed line, a duplicate name or a bad landmark array.
Benchmark read_benchmark(const std::string& path);
/// Writes `folder`/cases.jsonl (paths as given), atomically.
void write_manifest(const std::string& folder, const std::vector<BenchmarkCase>& cases);

}  // namespace pixel3dmm::eval
