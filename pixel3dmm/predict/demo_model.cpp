#include "pixel3dmm/predict/demo_model.h"

#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/predict/detail/demo_model_data.h"

namespace pixel3dmm::predict {

nn::Pixel3DMMNet demo_network(nn::PredictionType type) {
  const bool uv = type == nn::PredictionType::UV;
  const auto files = detail::demo_model_files(uv);
  const std::string name = uv ? "<embedded demo uv network>" : "<embedded demo normals network>";
  const auto config = nn::NetworkConfig::from_json(nlohmann::json::parse(files.config), name);
  nn::Pixel3DMMNet net(config);
  nn::load_official_state_dict(net, io::parse_safetensors(files.weights, name).tensors, name);
  net->eval();
  return net;
}

Predictor demo_predictor() {
  PredictorOptions options;
  options.mirror = false;
  return Predictor(demo_network(nn::PredictionType::UV), demo_network(nn::PredictionType::Normals), options);
}

}  // namespace pixel3dmm::predict
