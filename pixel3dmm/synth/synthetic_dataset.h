#pragma once
/// Synthetic training data: photo-like renders of random FLAME heads with their exact UV, normal and mask targets
/// (docs/datasets.md). UV and mask are render_synthetic_target's with every noise off, i.e. exactly what the
/// fitter compares its renders with; the normals are the FLAME-frame vertex normals of the mesh the photo shows
/// (eyelids and neck included: the fitter's normal loss, like the official one, uses the mesh without them, which
/// differs around the eyes), so they equal what a mesh sample of the same mesh renders; the image is a shaded, coloured
/// render of the same raster: skin albedo with smooth variation, darker brows and hair, reddish lips, white eyeballs
/// with iris and pupil, Lambertian light plus a weak specular sheen, a random background, antialiased edges and mild
/// noise. Deterministic in (seed, index), whatever the thread count.

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/synth/synthetic_target.h"

namespace pixel3dmm::synth {

struct SyntheticPhotoOptions {
  int64_t size = 256;                            ///< image and target resolution (square)
  RandomParamsOptions params;                    ///< identity, expression, pose, camera ranges
  double max_noise = 0.01;                       ///< image noise std uniform in [0, max_noise]
  double max_specular = 0.15;                    ///< specular strength uniform in [0, max_specular]
  double ambient_min = 0.25, ambient_max = 0.5;  ///< ambient light level
  double diffuse_min = 0.5, diffuse_max = 0.85;  ///< directional light level
};

/// One synthetic photo and its ground truth (the photo and its targets are those of a train::TrainingSample).
struct SyntheticPhoto {
  std::string id;                ///< the sample index as text; "" for a photo of given parameters
  torch::Tensor image;           ///< 3 x S x S float32 RGB in [0, 1]
  torch::Tensor uv;              ///< 2 x S x S float32 exact (u, 1 - v) target
  torch::Tensor normals;         ///< 3 x S x S float32 exact FLAME-frame unit normals
  torch::Tensor mask;            ///< 1 x S x S float32 raster coverage in {0, 1}
  fit::FitParams params;         ///< batch 1, the fitter's FLAME component counts
  render::Camera camera;         ///< the official camera at S x S (the head pose is in params.rotation/translation)
  render::OpenCVCamera opencv;   ///< the camera of the FLAME-frame mesh: K, R, t (batch 1) as a mesh sample takes it
  torch::Tensor vertices;        ///< 1 x V x 3 world (head pose applied), metres
  torch::Tensor vertices_flame;  ///< 1 x V x 3 FLAME frame, posed: the mesh of a mesh sample
  torch::Tensor landmarks;       ///< 1 x 68 x 2 iBUG landmarks in pixels (analytic projection)
  torch::Tensor alpha;           ///< 1 x S x S antialiased coverage in [0, 1] (the image's compositing weight)
  torch::Tensor albedo;          ///< V x 3 per-vertex reflectance in [0, 1]
};

/// Renders synthetic photo `index` of the dataset `seed` with the fitter's FLAME model and renderer (build the
/// fitter from synthetic_flame() or a user's FLAME). The same (seed, index, options) always give the same
/// photo; different indices are independent draws. Thread-safe (const fitter).
SyntheticPhoto render_synthetic_photo(const fit::Fitter& fitter, uint64_t seed, int64_t index,
                                      const SyntheticPhotoOptions& options = {});

/// The photo of given parameters (batch 1, the fitter's component counts), e.g. a benchmark case's truth:
/// `appearance_seed` draws albedo, light, background and noise; `options.params` is unused. The photo's id is "".
SyntheticPhoto render_synthetic_photo(const fit::Fitter& fitter, const fit::FitParams& params, uint64_t appearance_seed,
                                      const SyntheticPhotoOptions& options = {});

/// Per-vertex albedo of a random face: V x 3 float32 in [0, 1], deterministic in `seed`. Regions come from the
/// model's template, landmark embedding (brows, lips, mouth: iBUG 17-26, 48-67) and masks (scalp, eyeballs); a
/// model without them gets plain skin there.
torch::Tensor synthetic_albedo(const flame::FlameModel& model, uint64_t seed);

struct SyntheticDatasetOptions {
  int64_t count = 100;  ///< number of samples
  uint64_t seed = 0;    ///< dataset seed: sample i is render_synthetic_photo(seed, i)
  SyntheticPhotoOptions photo;
  bool png_targets = false;  ///< uv / normals as 8-bit PNG in the official encodings instead of exact float .npy
  bool meshes = false;       ///< also meshes/<id>.npy (V x 3 FLAME frame) and manifest_meshes.jsonl (mesh samples)
  std::string flame;         ///< FLAME model file; empty = the synthetic FLAME-layout model
};

/// Writes a dataset folder: rgb/<id>.png, uv/<id>.npy (H x W x 2 float32; .png with png_targets), normals/<id>.npy
/// (H x W x 3; .png), mask/<id>.png, params/<id>.safetensors (the FitParams with official names plus camera_K,
/// camera_R, camera_t of the OpenCV camera of the FLAME-frame mesh), then manifest.jsonl. The folder appears whole
/// or not at all (built in a hidden sibling and renamed; an existing folder is replaced). Samples are generated in
/// parallel over the library's intra-op threads; `progress(done, count)` is called on the calling thread.
/// Returns the manifest's path.
std::string write_synthetic_dataset(const std::string& folder, const SyntheticDatasetOptions& options = {},
                                    const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace pixel3dmm::synth
