#include "pixel3dmm/identity/mica.h"

#include <torch/nn/functional/normalization.h>

#include <filesystem>
#include <regex>
#include <set>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/identity/alignment.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/nn/network.h"

namespace pixel3dmm::identity {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_of(const TensorMap& tensors, const std::string& key, const std::string& source, int64_t dims) {
  const auto it = tensors.find(key);
  PIXEL3DMM_CHECK_FORMAT(it != tensors.end(), source, "tensor '", key, "' is missing");
  PIXEL3DMM_CHECK_FORMAT(it->second.dim() == dims, source, "tensor '", key, "': expected ", dims,
                         " dimensions, found shape ", it->second.sizes());
  return key;
}
}  // namespace

MicaImpl::MicaImpl(const MicaOptions& options_) : options(options_) { reset(); }

void MicaImpl::reset() {
  PIXEL3DMM_CHECK(options.regressor().z_dim() == options.arcface().num_features(),
                  "MicaOptions: the mapping network's z_dim (", options.regressor().z_dim(),
                  ") must equal ArcFace's num_features (", options.arcface().num_features(), ")");
  arcface = register_module("arcface", IResNet(options.arcface()));
  regressor = register_module("regressor", MappingNetwork(options.regressor()));
}

torch::Tensor MicaImpl::identity_features(const torch::Tensor& blob) {
  namespace F = torch::nn::functional;
  return F::normalize(arcface(blob), F::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
}

torch::Tensor MicaImpl::forward(const torch::Tensor& blob) { return regressor(identity_features(blob)); }

TensorMap mica_state_dict(const Mica& mica) {
  TensorMap out;
  for (const auto& item : mica->named_parameters()) out[item.key()] = item.value();
  for (const auto& item : mica->named_buffers())
    if (!ends_with(item.key(), "num_batches_tracked")) out[item.key()] = item.value();
  return out;
}

MicaOptions mica_options_from(const TensorMap& tensors, const std::string& source) {
  MicaOptions options;
  // Block counts: the largest B + 1 among arcface.layerL.B.* per layer.
  std::vector<int64_t> layers(4, 0);
  const std::regex block(R"(^arcface\.layer([1-4])\.([0-9]+)\.)");
  std::smatch m;
  for (const auto& [name, t] : tensors)
    if (std::regex_search(name, m, block)) {
      const int l = std::stoi(m[1]) - 1;
      layers[l] = std::max<int64_t>(layers[l], std::stoll(m[2]) + 1);
    }
  for (int l = 0; l < 4; ++l)
    PIXEL3DMM_CHECK_FORMAT(layers[l] > 0, source, "no tensor 'arcface.layer", l + 1,
                           ".0.*': not MICA weights (expected the IResNet names under 'arcface.')");
  const auto& fc = tensors.at(shape_of(tensors, "arcface.fc.weight", source, 2));
  PIXEL3DMM_CHECK_FORMAT(fc.size(1) % 512 == 0, source,
                         "tensor 'arcface.fc.weight': expected shape [F, 512 * s * s], found ", fc.sizes());
  const int64_t cells = fc.size(1) / 512;
  int64_t side = 1;
  while (side * side < cells) ++side;
  PIXEL3DMM_CHECK_FORMAT(side * side == cells, source,
                         "tensor 'arcface.fc.weight': expected shape [F, 512 * s * s], found ", fc.sizes());
  options.arcface().layers(layers).num_features(fc.size(0)).input_size(16 * side);
  int64_t hidden = 0;
  while (tensors.count("regressor.network." + std::to_string(hidden + 1) + ".weight")) ++hidden;
  const auto& first = tensors.at(shape_of(tensors, "regressor.network.0.weight", source, 2));
  const auto& out = tensors.at(shape_of(tensors, "regressor.output.weight", source, 2));
  PIXEL3DMM_CHECK_FORMAT(hidden <= 5, source, "the mapping network has ", hidden,
                         " hidden layers after the first; only up to 5 (no skip connections) are supported");
  options.regressor().z_dim(first.size(1)).hidden_dim(first.size(0)).output_dim(out.size(0)).hidden_layers(hidden);
  PIXEL3DMM_CHECK_FORMAT(first.size(1) == fc.size(0), source,
                         "tensor 'regressor.network.0.weight': expected shape [H, ", fc.size(0),
                         "] (ArcFace's feature width), found ", first.sizes());
  return options;
}

void load_mica_state_dict(Mica& mica, const TensorMap& tensors, const std::string& source) {
  TensorMap found;
  for (const auto& [name, t] : tensors)
    if (!ends_with(name, "num_batches_tracked")) found[name] = t;
  nn::detail::copy_strict(mica_state_dict(mica), found, {}, source);
}

Mica load_mica(const std::string& path) {
  PIXEL3DMM_CHECK_T(FileNotFound, std::filesystem::exists(path), path,
                    ": MICA weights not found (python -m pixel3dmm.convert_mica mica.tar writes them)");
  const auto file = io::read_safetensors(path);
  const auto format = file.metadata.find("format");
  PIXEL3DMM_CHECK_FORMAT(format == file.metadata.end() || format->second == "pixel3dmm-mica", path,
                         "metadata 'format': expected 'pixel3dmm-mica', found '", format->second, "'");
  Mica mica(mica_options_from(file.tensors, path));
  load_mica_state_dict(mica, file.tensors, path);
  mica->eval();
  return mica;
}

void save_mica(const Mica& mica, const std::string& path) {
  io::TensorMap tensors;
  for (const auto& [name, t] : mica_state_dict(mica)) tensors[name] = t.detach().to(torch::kFloat32);
  io::write_safetensors(path, tensors, {{"format", "pixel3dmm-mica"}});
}

std::vector<int64_t> identity_frames(int64_t n) {
  PIXEL3DMM_CHECK(n >= 0, "identity_frames: negative frame count ", n);
  std::vector<int64_t> frames;
  for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 10)) frames.push_back(i);
  return frames;
}

torch::Tensor identity_code(Mica& mica, const torch::Tensor& image_rgb, const torch::Tensor& keypoints) {
  torch::NoGradGuard no_grad;
  torch::Tensor blob;
  if (keypoints.defined()) {
    blob = arcface_input(image_rgb, keypoints);
  } else {
    PIXEL3DMM_CHECK(image_rgb.dim() == 3 && image_rgb.size(0) == 112 && image_rgb.size(1) == 112,
                    "MICA input: without keypoints an aligned 112 x 112 ArcFace crop is expected, found ",
                    image_rgb.sizes());
    blob = arcface_blob(image_rgb);
  }
  return mica->forward(blob.unsqueeze(0))[0];
}

}  // namespace pixel3dmm::identity
