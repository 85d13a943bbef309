#pragma once
/// Training datasets registered to the FLAME topology (docs/datasets.md).
///
/// A dataset is a manifest: a JSON-lines file, one sample per line, with paths relative to the manifest's folder
/// (they may not leave it). A sample either carries pre-rendered targets
///   {"id": "s0", "image": "rgb/s0.png", "uv": "uv/s0.png", "normals": "normals/s0.png", "mask": "mask/s0.png"}
/// or a registered mesh and its camera, from which the targets are rendered by our rasteriser
///   {"id": "s1", "image": "rgb/s1.png", "mesh": "meshes/s1.ply",
///    "camera": {"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "R": [[...], [...], [...]], "t": [tx, ty, tz]}}
/// (an OpenCV camera in pixels of the image, optional "znear" / "zfar" clipping distances, default 0.01 and 100;
/// mesh vertices in the FLAME frame: the normals are taken in the mesh's own coordinates, as the official networks
/// predict them). "mask" is optional for mesh samples (default the rendered coverage; a given mask is intersected
/// with it); "uv" / "normals" may each be absent from pre-rendered samples (a dataset for one head), which need a
/// "mask". A sample has either a mesh or pre-rendered targets. Paths may not be absolute, contain ".." that leaves
/// the folder, or follow a symbolic link out of it.
///
/// Target files: PNG in the official encodings (uv: channels 0, 1 = 255 (u, 1 - v); normals: 255 (s + 1) / 2; 16-bit
/// PNGs use 65535 instead of 255) or .npy float32 H x W x C holding the decoded values (exact). Masks: PNG (channel
/// 0) or .npy H x W (x 1), > 0 = a pixel that is trained on.
/// Meshes: .ply, .obj or .npy (V x 3) with the FLAME model's vertex count.

#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pixel3dmm::train {

/// One example, at the resolution of its files. Targets use the conventions of predict::Predictions, i.e. what
/// the fitter consumes; the trainer converts them to the network's raw units.
struct TrainingSample {
  std::string id;
  torch::Tensor image;    ///< 3 x H x W float32 RGB in [0, 1]
  torch::Tensor uv;       ///< 2 x H x W float32 (u, 1 - v) in [0, 1]; undefined when the sample has none
  torch::Tensor normals;  ///< 3 x H x W float32 unit normals, (n0, -n2, -n1) of the raw output; undefined if none
  torch::Tensor mask;     ///< 1 x H x W float32 in {0, 1}: the pixels the losses and metrics use
};

/// One manifest line, paths resolved against the manifest's folder.
struct ManifestEntry {
  int64_t line = 0;  ///< 1-based line number in the manifest
  std::string id;
  std::string image, uv, normals, mask, mesh;  ///< absolute paths; empty = absent
  nlohmann::json camera;                       ///< null unless a mesh sample
};

struct DatasetOptions {
  /// FLAME model file (.npz/.pkl/.safetensors) whose topology and UV layout mesh samples are rendered with;
  /// empty = the synthetic FLAME-layout model.
  std::string flame;
  /// Keep rendered targets of mesh samples in memory after their first use.
  bool cache_renders = true;
};

struct DatasetProblem;

/// A manifest and the means to load its samples. get() is const and safe to call from several threads.
class Dataset {
 public:
  /// Parses `manifest`. FileNotFound if missing; FormatError naming the file and line for invalid JSON, unknown or
  /// missing keys, a path outside the manifest's folder, duplicate ids or a sample with no target.
  static Dataset open(const std::string& manifest, const DatasetOptions& options = {});

  int64_t size() const;
  const ManifestEntry& entry(int64_t index) const;
  const std::string& manifest() const;
  /// The folder relative paths are resolved against.
  const std::string& root() const;

  /// Loads sample `index` (renders the targets of a mesh sample). Errors name the file and the sample's line:
  /// FileNotFound, FormatError for unreadable files, ValueError for shape mismatches between image and targets
  /// and for non-finite values.
  TrainingSample get(int64_t index) const;

 private:
  friend std::vector<DatasetProblem> check_dataset(const std::string&, const DatasetOptions&,
                                                          const std::function<void(int64_t, int64_t)>&);
  struct State;
  std::shared_ptr<const State> state_;
};

/// A problem `check_dataset` found with one sample.
struct DatasetProblem {
  int64_t index = -1;  ///< sample index (-1: the manifest as a whole)
  int64_t line = 0;    ///< manifest line
  std::string id;
  std::string file;    ///< the offending file (may be the manifest)
  std::string reason;  ///< e.g. "missing file", "uv is 256 x 256 but the image is 512 x 512", "NaN in normals"
};

/// Loads every sample and reports every bad one (missing files, unreadable files, shape mismatches, NaN/Inf,
/// values out of range, an empty mask), instead of stopping at the first. `progress(done, total)` if given.
/// A manifest that does not parse yields a single problem with index -1.
std::vector<DatasetProblem> check_dataset(const std::string& manifest, const DatasetOptions& options = {},
                                          const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace pixel3dmm::train
