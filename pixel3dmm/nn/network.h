#pragma once
/// The whole Pixel3DMM network (backbone + head), its JSON configuration, and strict loading of converted
/// official checkpoints (python -m pixel3dmm.convert_checkpoint) and timm backbone weights.
///
/// Files: `<name>.safetensors` holds the official state dict without its `net.` prefix (backbone under
/// `img_encoder.model.`, head names at the top level, see head.h); `<name>.json` holds NetworkConfig.
/// In C++ the backbone is the submodule `backbone` and the head the submodule `head`;
/// official_name()/module_name() translate between the two namings.

#include <nlohmann/json.hpp>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "pixel3dmm/io/safetensors.h"  // TensorMap
#include "pixel3dmm/nn/head.h"
#include "pixel3dmm/nn/vit.h"

namespace pixel3dmm::nn {

using io::TensorMap;  // {name: tensor}, the one map type of every reader and writer

/// What a network predicts; decides the output channels.
enum class PredictionType { UV, Normals };

/// "uv_map" -> UV, "normals" -> Normals (the official names); ValueError otherwise.
PredictionType parse_prediction_type(const std::string& name);
std::string to_string(PredictionType type);
/// 2 for UV, 3 for normals.
int64_t prediction_channels(PredictionType type);

/// Hyper-parameters of one network, as stored in the .json beside its weights.
struct NetworkConfig {
  PredictionType prediction_type = PredictionType::UV;
  /// Side of the square network input (official inference: 512). The backbone's patch grid is
  /// image_size / patch_size; the output is 16 times the grid.
  int64_t image_size = 512;
  /// Input normalisation of the timm model (ImageNet for DINO and DINOv2).
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
  /// The timm name the backbone was built from (informative; `backbone` holds the architecture).
  std::string backbone_name = "vit_small_patch16_224.dino";
  VisionTransformerOptions backbone;
  /// head.in_dim must equal backbone.embed_dim and head.pred_dim prediction_channels(prediction_type).
  PredictionHeadOptions head;
  /// Free-form provenance (the converter records the checkpoint's name and its raw hyper-parameters).
  nlohmann::json source = nlohmann::json::object();

  /// The official architecture for a prediction type and timm backbone name (configs/base.yaml defaults:
  /// n_views 2, view_embed_dim 16, embedding_dim 256, 6 layers, 8 heads).
  static NetworkConfig official(PredictionType type, const std::string& backbone_name);

  /// Checks consistency; throws ValueError naming `where` and the offending field.
  void validate(const std::string& where = "network config") const;

  nlohmann::json to_json() const;
  /// Unknown keys and wrong types are errors naming `where` and the key.
  static NetworkConfig from_json(const nlohmann::json& j, const std::string& where = "network config");
  /// Reads / writes (atomically) a JSON file.
  static NetworkConfig read(const std::string& path);
  void write(const std::string& path) const;
};

/// Backbone + head. forward: image in [0, 1] -> raw prediction (UV in [-1, 1] units; unnormalised normals).
class Pixel3DMMNetImpl : public torch::nn::Cloneable<Pixel3DMMNetImpl> {
 public:
  explicit Pixel3DMMNetImpl(const NetworkConfig& config = {});
  void reset() override;

  /// image: B x 3 x H x W float32 in [0, 1] (or bfloat16 for a network moved to bfloat16), H and W multiples of
  /// the patch size (normally image_size)
  /// -> B x C x 16 H/p x 16 W/p, C = 2 (UV) or 3 (normals), the official network's raw output.
  torch::Tensor forward(const torch::Tensor& image);
  /// The backbone part: image in [0, 1] -> patch features B x embed_dim x H/p x W/p (class token dropped).
  torch::Tensor features(const torch::Tensor& image);

  NetworkConfig config;
  VisionTransformer backbone{nullptr};
  PredictionHead head{nullptr};
};
TORCH_MODULE(Pixel3DMMNet);

/// "backbone.X" -> "img_encoder.model.X"; "head.X" -> "X".
std::string official_name(const std::string& module_name);
/// The inverse of official_name.
std::string module_name(const std::string& official_name);

/// Official parameter names the official network has but never uses at inference; a strict load skips them:
/// dir_norm., dir_norm_uv., uv_enc_mlp., vol_decoder.norm., t_conv3_conf., token_2_patch_conf.
const std::vector<std::string>& ignorable_official_prefixes();

/// The network's parameters under their official names.
TensorMap official_state_dict(const Pixel3DMMNet& net);

/// Copies `tensors` (official names) into `net`. Strict: every missing, unexpected (other than the ignorable
/// prefixes) and mis-shaped tensor is listed in one FormatError naming `source`. Tensors of another floating
/// dtype are converted to float32.
void load_official_state_dict(Pixel3DMMNet& net, const TensorMap& tensors, const std::string& source);

/// Builds and loads a network: `weights` (.safetensors) and `config` (.json; empty = the weights path with
/// .json instead of .safetensors). Returns it in eval mode. FileNotFound / FormatError name the file.
Pixel3DMMNet load_network(const std::string& weights, const std::string& config = "");

/// Writes the weights (official names) and the config beside them (config empty = weights path with .json).
void save_network(const Pixel3DMMNet& net, const std::string& weights, const std::string& config = "");

/// Copies timm backbone weights into `vit` (strict as above). Accepts bare timm names (patch_embed.proj.weight,
/// the layout of timm's Hugging Face model.safetensors) or names under `img_encoder.model.` / `backbone.`;
/// a classifier (`head.*`, `fc_norm.*`) is ignored.
void load_backbone_state_dict(VisionTransformer& vit, const TensorMap& tensors, const std::string& source);

/// Reads a timm .safetensors file into `vit` (see load_backbone_state_dict).
void load_backbone_weights(VisionTransformer& vit, const std::string& path);

namespace detail {
/// The strict copy shared by the loaders: `expected` (name -> destination tensor), `found` (name -> tensor).
/// Names in `found` starting with one of `ignorable` are skipped. Throws one FormatError listing every problem.
void copy_strict(const std::map<std::string, torch::Tensor>& expected, const TensorMap& found,
                 const std::vector<std::string>& ignorable, const std::string& source);
}  // namespace detail

}  // namespace pixel3dmm::nn
