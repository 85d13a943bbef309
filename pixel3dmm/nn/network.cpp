#include "pixel3dmm/nn/network.h"

#include "pixel3dmm/io/config.h"

#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::nn {

using json = nlohmann::json;

PredictionType parse_prediction_type(const std::string& name) {
  if (name == "uv_map") return PredictionType::UV;
  if (name == "normals") return PredictionType::Normals;
  throw ValueError("unknown prediction type '" + name + "' (expected 'uv_map' or 'normals')");
}

std::string to_string(PredictionType type) { return type == PredictionType::UV ? "uv_map" : "normals"; }

int64_t prediction_channels(PredictionType type) { return type == PredictionType::UV ? 2 : 3; }

// ---------------------------------------------------------------------------------------------------------------
// NetworkConfig <-> JSON
NetworkConfig NetworkConfig::official(PredictionType type, const std::string& backbone_name) {
  NetworkConfig c;
  c.prediction_type = type;
  c.backbone_name = backbone_name;
  c.backbone = VisionTransformerOptions::from_timm_name(backbone_name);
  c.head.in_dim(c.backbone.embed_dim()).pred_dim(prediction_channels(type));
  c.image_size = 32 * c.backbone.patch_size();  // the official decoder expects a 32 x 32 token grid
  return c;
}

void NetworkConfig::validate(const std::string& where) const {
  PIXEL3DMM_CHECK(image_size > 0 && image_size % backbone.patch_size() == 0, where, ": image_size ", image_size,
                  " is not a positive multiple of the backbone's patch size ", backbone.patch_size());
  PIXEL3DMM_CHECK(head.in_dim() == backbone.embed_dim(), where, ": head.in_dim ", head.in_dim(),
                  " differs from backbone.embed_dim ", backbone.embed_dim());
  PIXEL3DMM_CHECK(head.pred_dim() == prediction_channels(prediction_type), where, ": head.pred_dim ",
                  head.pred_dim(), " differs from the ", prediction_channels(prediction_type), " channels of '",
                  to_string(prediction_type), "'");
  // Positive head counts before the divisibility checks (found by fuzz_config: num_heads 0 divided by zero).
  PIXEL3DMM_CHECK(backbone.num_heads() > 0 && head.num_heads() > 0, where, ": num_heads must be positive, found ",
                  backbone.num_heads(), " (backbone) and ", head.num_heads(), " (head)");
  PIXEL3DMM_CHECK(backbone.embed_dim() % backbone.num_heads() == 0, where, ": backbone.embed_dim ",
                  backbone.embed_dim(), " is not divisible by backbone.num_heads ", backbone.num_heads());
  PIXEL3DMM_CHECK(head.embedding_dim() % head.num_heads() == 0, where, ": head.embedding_dim ",
                  head.embedding_dim(), " is not divisible by head.num_heads ", head.num_heads());
  for (int i = 0; i < 3; ++i) PIXEL3DMM_CHECK(std[i] > 0, where, ": std must be positive");
}

json NetworkConfig::to_json() const {
  const auto& b = backbone;
  const auto& h = head;
  return json{{"format", "pixel3dmm-network"},
              {"version", 1},
              {"prediction_type", nn::to_string(prediction_type)},
              {"image_size", image_size},
              {"mean", mean},
              {"std", std},
              {"backbone",
               {{"name", backbone_name},
                {"patch_size", b.patch_size()},
                {"embed_dim", b.embed_dim()},
                {"depth", b.depth()},
                {"num_heads", b.num_heads()},
                {"mlp_ratio", b.mlp_ratio()},
                {"img_size", b.img_size()},
                {"layer_scale", b.layer_scale()},
                {"reg_tokens", b.reg_tokens()},
                {"no_embed_class", b.no_embed_class()},
                {"eps", b.eps()}}},
              {"head",
               {{"in_dim", h.in_dim()},
                {"n_views", h.n_views()},
                {"view_embed_dim", h.view_embed_dim()},
                {"embedding_dim", h.embedding_dim()},
                {"num_layers", h.num_layers()},
                {"num_heads", h.num_heads()},
                {"mlp_ratio", h.mlp_ratio()},
                {"eps", h.eps()},
                {"pred_dim", h.pred_dim()}}},
              {"source", source}};
}

namespace {
// Reads the keys of object `j` (at dotted path `where`) through `get`, rejecting unknown ones by name.
struct JsonReader {
  const json& j;
  std::string where;
  std::set<std::string> known;

  JsonReader(const json& j, std::string where) : j(j), where(std::move(where)) {
    PIXEL3DMM_CHECK(j.is_object(), this->where, ": expected a JSON object, found ", j.type_name());
  }
  template <typename T>
  void get(const char* key, T& out) {
    known.insert(key);
    if (!j.contains(key)) return;  // keeps the default
    try {
      // Type and range first (found by fuzz_config): nlohmann converts 1e60 to an integer field with a
      // static_cast, which is undefined behaviour.
      io::detail::check_json_type<T>(j.at(key));
      j.at(key).get_to(out);
    } catch (const json::exception& e) {
      throw ValueError(where + ": key '" + key + "': " + e.what());
    } catch (const io::detail::ConfigKeyError& e) {
      throw ValueError(where + ": key '" + key + "': " + e.what());
    }
  }
  template <typename T, typename Setter>
  void arg(const char* key, T current, Setter set) {
    get(key, current);
    set(current);
  }
  void finish() const {
    for (const auto& item : j.items())
      if (!known.count(item.key())) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        throw ValueError(where + ": unknown key '" + item.key() + "' (known: " + list + ")");
      }
  }
};
}  // namespace

NetworkConfig NetworkConfig::from_json(const json& j, const std::string& where) {
  NetworkConfig c;
  JsonReader r(j, where);
  std::string format = "pixel3dmm-network", type = to_string(c.prediction_type);
  int version = 1;
  r.get("format", format);
  r.get("version", version);
  PIXEL3DMM_CHECK(format == "pixel3dmm-network", where, ": 'format' is '", format, "', expected 'pixel3dmm-network'");
  PIXEL3DMM_CHECK(version == 1, where, ": unsupported version ", version, " (this build reads version 1)");
  r.get("prediction_type", type);
  try {
    c.prediction_type = parse_prediction_type(type);
  } catch (const ValueError& e) {
    throw ValueError(where + ": " + e.what());
  }
  r.get("image_size", c.image_size);
  r.get("mean", c.mean);
  r.get("std", c.std);
  r.get("source", c.source);
  if (j.contains("backbone")) {
    JsonReader b(j.at("backbone"), where + ".backbone");
    auto& o = c.backbone;
    b.get("name", c.backbone_name);
    b.arg("patch_size", o.patch_size(), [&](int64_t v) { o.patch_size(v); });
    b.arg("embed_dim", o.embed_dim(), [&](int64_t v) { o.embed_dim(v); });
    b.arg("depth", o.depth(), [&](int64_t v) { o.depth(v); });
    b.arg("num_heads", o.num_heads(), [&](int64_t v) { o.num_heads(v); });
    b.arg("mlp_ratio", o.mlp_ratio(), [&](double v) { o.mlp_ratio(v); });
    b.arg("img_size", o.img_size(), [&](int64_t v) { o.img_size(v); });
    b.arg("layer_scale", o.layer_scale(), [&](bool v) { o.layer_scale(v); });
    b.arg("reg_tokens", o.reg_tokens(), [&](int64_t v) { o.reg_tokens(v); });
    b.arg("no_embed_class", o.no_embed_class(), [&](bool v) { o.no_embed_class(v); });
    b.arg("eps", o.eps(), [&](double v) { o.eps(v); });
    b.finish();
  }
  if (j.contains("head")) {
    JsonReader h(j.at("head"), where + ".head");
    auto& o = c.head;
    h.arg("in_dim", o.in_dim(), [&](int64_t v) { o.in_dim(v); });
    h.arg("n_views", o.n_views(), [&](int64_t v) { o.n_views(v); });
    h.arg("view_embed_dim", o.view_embed_dim(), [&](int64_t v) { o.view_embed_dim(v); });
    h.arg("embedding_dim", o.embedding_dim(), [&](int64_t v) { o.embedding_dim(v); });
    h.arg("num_layers", o.num_layers(), [&](int64_t v) { o.num_layers(v); });
    h.arg("num_heads", o.num_heads(), [&](int64_t v) { o.num_heads(v); });
    h.arg("mlp_ratio", o.mlp_ratio(), [&](double v) { o.mlp_ratio(v); });
    h.arg("eps", o.eps(), [&](double v) { o.eps(v); });
    h.arg("pred_dim", o.pred_dim(), [&](int64_t v) { o.pred_dim(v); });
    h.finish();
  }
  r.known.insert({"backbone", "head"});
  r.finish();
  c.validate(where);
  return c;
}

NetworkConfig NetworkConfig::read(const std::string& path) {
  const std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
  return from_json(j, path);
}

void NetworkConfig::write(const std::string& path) const { write_file_atomically(path, to_json().dump(2) + "\n"); }

// ---------------------------------------------------------------------------------------------------------------
Pixel3DMMNetImpl::Pixel3DMMNetImpl(const NetworkConfig& config) : config(config) {
  config.validate();
  reset();
}

void Pixel3DMMNetImpl::reset() {
  backbone = register_module("backbone", VisionTransformer(config.backbone));
  head = register_module("head", PredictionHead(config.head));
}

torch::Tensor Pixel3DMMNetImpl::features(const torch::Tensor& image) {
  check_shape(image, {-1, 3, -1, -1}, "Pixel3DMMNet input");
  PIXEL3DMM_CHECK(image.is_floating_point(), "Pixel3DMMNet input: expected a float32 image (or the dtype the "
                  "network was converted to), found ", c10::toString(image.scalar_type()));
  const auto opts = image.options();
  const auto mean = torch::tensor({config.mean[0], config.mean[1], config.mean[2]}, opts).view({1, 3, 1, 1});
  const auto std = torch::tensor({config.std[0], config.std[1], config.std[2]}, opts).view({1, 3, 1, 1});
  return backbone->feature_map((image - mean) / std);
}

torch::Tensor Pixel3DMMNetImpl::forward(const torch::Tensor& image) { return head->forward(features(image)); }

// ---------------------------------------------------------------------------------------------------------------
// Names and strict loading
namespace {
const std::string kBackboneModule = "backbone.", kBackboneOfficial = "img_encoder.model.", kHeadModule = "head.";

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
}  // namespace

std::string official_name(const std::string& name) {
  if (starts_with(name, kBackboneModule)) return kBackboneOfficial + name.substr(kBackboneModule.size());
  if (starts_with(name, kHeadModule)) return name.substr(kHeadModule.size());
  throw ValueError("official_name: '" + name + "' is neither under backbone. nor head.");
}

std::string module_name(const std::string& name) {
  if (starts_with(name, kBackboneOfficial)) return kBackboneModule + name.substr(kBackboneOfficial.size());
  return kHeadModule + name;
}

const std::vector<std::string>& ignorable_official_prefixes() {
  static const std::vector<std::string> prefixes{"dir_norm.",        "dir_norm_uv.",   "uv_enc_mlp.",
                                                 "vol_decoder.norm.", "t_conv3_conf.", "token_2_patch_conf."};
  return prefixes;
}

TensorMap official_state_dict(const Pixel3DMMNet& net) {
  TensorMap out;
  for (const auto& item : net->named_parameters()) out[official_name(item.key())] = item.value();
  for (const auto& item : net->named_buffers()) out[official_name(item.key())] = item.value();
  return out;
}

void detail::copy_strict(const std::map<std::string, torch::Tensor>& expected, const TensorMap& found,
                         const std::vector<std::string>& ignorable, const std::string& source) {
  std::vector<std::string> missing, unexpected, misshaped;
  for (const auto& [name, dst] : expected) {
    const auto it = found.find(name);
    if (it == found.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != dst.sizes()) {
      misshaped.push_back(name + " (expected " + shape_string(dst.sizes()) + ", found " +
                          shape_string(it->second.sizes()) + ")");
    } else if (!it->second.is_floating_point()) {
      misshaped.push_back(name + " (expected a floating-point tensor, found " +
                          std::string(c10::toString(it->second.scalar_type())) + ")");
    }
  }
  for (const auto& [name, t] : found) {
    if (expected.count(name)) continue;
    bool skip = false;
    for (const auto& prefix : ignorable) skip = skip || starts_with(name, prefix);
    if (!skip) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::ostringstream msg;
    msg << source << ": the weights do not match the network";
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      msg << "; " << names.size() << " " << what << ": ";
      for (size_t i = 0; i < names.size(); ++i) msg << (i ? ", " : "") << names[i];
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("with the wrong shape or dtype", misshaped);
    throw FormatError(msg.str());
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, dst] : expected) {
    const auto& src = found.at(name);
    PIXEL3DMM_CHECK_FORMAT(torch::isfinite(src).all().item<bool>(), source, "tensor '", name,
                           "' holds non-finite values");
    dst.copy_(src.to(dst.scalar_type()));
  }
}

void load_official_state_dict(Pixel3DMMNet& net, const TensorMap& tensors, const std::string& source) {
  std::map<std::string, torch::Tensor> expected;
  for (const auto& item : net->named_parameters()) expected[official_name(item.key())] = item.value();
  for (const auto& item : net->named_buffers()) expected[official_name(item.key())] = item.value();
  detail::copy_strict(expected, tensors, ignorable_official_prefixes(), source);
}

namespace {
std::string default_config_path(const std::string& weights) {
  std::filesystem::path p(weights);
  return p.replace_extension(".json").string();
}
}  // namespace

Pixel3DMMNet load_network(const std::string& weights, const std::string& config) {
  const std::string config_path = config.empty() ? default_config_path(weights) : config;
  PIXEL3DMM_CHECK_T(FileNotFound, std::filesystem::exists(config_path), config_path,
                    ": network config not found (python -m pixel3dmm.convert_checkpoint writes it beside the "
                    ".safetensors)");
  const NetworkConfig cfg = NetworkConfig::read(config_path);
  Pixel3DMMNet net(cfg);
  load_official_state_dict(net, io::read_safetensors(weights).tensors, weights);
  net->eval();
  return net;
}

void save_network(const Pixel3DMMNet& net, const std::string& weights, const std::string& config) {
  io::TensorMap tensors;
  for (const auto& [name, t] : official_state_dict(net)) tensors[name] = t.detach();
  io::write_safetensors(weights, tensors, {{"format", "pixel3dmm-network"}});
  net->config.write(config.empty() ? default_config_path(weights) : config);
}

void load_backbone_state_dict(VisionTransformer& vit, const TensorMap& tensors, const std::string& source) {
  // Strip a common prefix (an official checkpoint's backbone or a pixel3dmm state dict) when present.
  TensorMap bare;
  bool prefixed = false;
  for (const char* prefix_c : {"img_encoder.model.", "backbone."}) {
    const std::string prefix = prefix_c;
    for (const auto& [name, t] : tensors)
      if (starts_with(name, prefix)) {
        bare[name.substr(prefix.size())] = t;
        prefixed = true;
      }
    if (prefixed) break;
  }
  std::map<std::string, torch::Tensor> expected;
  for (const auto& item : vit->named_parameters()) expected[item.key()] = item.value();
  for (const auto& item : vit->named_buffers()) expected[item.key()] = item.value();
  detail::copy_strict(expected, prefixed ? bare : tensors, {"head.", "fc_norm."}, source);
}

void load_backbone_weights(VisionTransformer& vit, const std::string& path) {
  load_backbone_state_dict(vit, io::read_safetensors(path).tensors, path);
}

}  // namespace pixel3dmm::nn
