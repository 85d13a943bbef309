#pragma once
/// The UV-space mask texture of the silhouette term. The official renderer samples `assets/uv_mask_eyes.png`
/// (face + eyeballs, 2048 x 2048 RGB, thresholded > 0 per channel) at the interpolated template UVs, so only the
/// face and the eyes are penalised on background pixels; without a texture pixel3dmm renders the whole mesh's
/// coverage (docs/fitting.md, "Silhouette").

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pixel3dmm/flame/flame_model.h"

namespace pixel3dmm::fit {

/// Reads a mask texture image (the official uv_mask_eyes.png): C x H x W float32, 1 where a channel is > 0, else 0
/// (the official `imread / 255 > 0`; C = 3 for RGB and grayscale alike). Throws FileNotFound / FormatError naming
/// the file.
torch::Tensor read_mask_texture(const std::string& path);

/// A 1 x size x size texture that is 1 on the texels covered by the faces whose three vertices all lie in the
/// union of the model's vertex masks `regions` (e.g. face, left_eyeball, right_eyeball: the official texture's
/// content), in MeshRenderer's texture layout (column (1 - u) * size, row (1 - v) * size; a texel counts when its
/// centre is inside a face). Uses the per-corner UVs when the model has them, else the per-vertex UVs. Throws
/// ValueError naming a missing mask or missing UVs.
torch::Tensor region_mask_texture(const flame::FlameModel& model, const std::vector<std::string>& regions,
                                  int64_t size = 1024);

/// The silhouette texture a FitConfig::silhouette_texture value selects: "" -> undefined (whole-mesh coverage);
/// "masks" -> region_mask_texture(model, {face, left_eyeball, right_eyeball}); "auto" -> the same when the model
/// has those three masks, else undefined; anything else -> read_mask_texture.
torch::Tensor silhouette_texture(const flame::FlameModel& model, const std::string& setting);

}  // namespace pixel3dmm::fit
