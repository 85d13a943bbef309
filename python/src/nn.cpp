// Bindings of pixel3dmm/nn: the network, its config and loaders, the resampling kernels.
#include <torch/python.h>

#include "bindings.h"
#include "pixel3dmm/io/resize.h"
#include "pixel3dmm/nn/network.h"

namespace pixel3dmm::python {

namespace {

nn::NetworkConfig config_from(const py::object& obj) {
  return nn::NetworkConfig::from_json(to_json(obj), "config");
}

}  // namespace

void bind_nn(py::module_& m) {
  m.def("official_config",
        [](const std::string& prediction_type, const std::string& backbone) {
          return from_json(nn::NetworkConfig::official(nn::parse_prediction_type(prediction_type), backbone).to_json());
        },
        py::arg("prediction_type"), py::arg("backbone") = "vit_small_patch16_224.dino",
        "The official architecture as a config dict: prediction_type 'uv_map' or 'normals', a timm backbone name.");
  m.def("resize_bicubic_antialias", &nn::resize_bicubic_antialias, py::arg("x"), py::arg("height"), py::arg("width"),
        "F.interpolate(x, (height, width), mode='bicubic', antialias=True): N x C x H x W -> N x C x height x width.");
  m.def("resample_abs_pos_embed",
        [](const torch::Tensor& pos, std::array<int64_t, 2> new_size, std::array<int64_t, 2> old_size,
           int64_t num_prefix_tokens) { return nn::resample_abs_pos_embed(pos, new_size, old_size, num_prefix_tokens); },
        py::arg("pos_embed"), py::arg("new_size"), py::arg("old_size"), py::arg("num_prefix_tokens") = 1,
        "timm's resample_abs_pos_embed (bicubic, antialias): 1 x (prefix + h*w) x C -> 1 x (prefix + h'*w') x C.");
  m.def("resize_pil_bicubic", &io::resize_pil_bicubic, py::arg("image"), py::arg("height"), py::arg("width"),
        "Pillow's default (BICUBIC) resize of 8-bit images, for floats k/255: N x C x H x W -> N x C x height x width.");
  m.def("resize_pil_bicubic_u8", &io::resize_pil_bicubic_u8, py::arg("image"), py::arg("height"), py::arg("width"),
        "Pillow's BICUBIC resize, bit-exact: N x C x H x W uint8 -> N x C x height x width uint8.");

  torch::python::bind_module<nn::Pixel3DMMNetImpl>(m, "Pixel3DMMNet")
      .def(py::init([](const py::object& config) { return std::make_shared<nn::Pixel3DMMNetImpl>(config_from(config)); }),
           py::arg("config"), "A randomly initialised network for a config dict (see official_config).")
      .def("features", &nn::Pixel3DMMNetImpl::features, py::arg("image"),
           "Backbone patch features: B x 3 x H x W in [0, 1] -> B x C x H/p x W/p.")
      .def("head_forward", [](nn::Pixel3DMMNetImpl& net, const torch::Tensor& f) { return net.head->forward(f); },
           py::arg("features"), "The head alone: B x C x h x w -> B x pred_dim x 16h x 16w.")
      .def("backbone_tokens", [](nn::Pixel3DMMNetImpl& net, const torch::Tensor& x) { return net.backbone->forward(x); },
           py::arg("image"), "timm forward_features on a normalised image: B x 3 x H x W -> B x (prefix + hw) x C.")
      .def_property_readonly("config", [](const nn::Pixel3DMMNetImpl& net) { return from_json(net.config.to_json()); })
      .def("official_state_dict",
           [](const std::shared_ptr<nn::Pixel3DMMNetImpl>& net) {
             return nn::official_state_dict(nn::Pixel3DMMNet(net));
           },
           "The parameters under their official names (dict of tensors, shared with the network).")
      .def("load_official_state_dict",
           [](const std::shared_ptr<nn::Pixel3DMMNetImpl>& net, const io::TensorMap& d, const std::string& source) {
             nn::Pixel3DMMNet n(net);
             nn::load_official_state_dict(n, d, source);
           },
           py::arg("state_dict"), py::arg("source") = "<state dict>",
           "Strict copy of official-named tensors; ValueError lists every missing, unexpected or mis-shaped one.")
      .def("load_backbone_weights",
           [](const std::shared_ptr<nn::Pixel3DMMNetImpl>& net, const std::string& path) {
             nn::load_backbone_weights(net->backbone, path);
           },
           py::arg("path"), "Loads timm backbone weights (.safetensors) into the backbone, strictly.")
      .def("__repr__", [](const nn::Pixel3DMMNetImpl& net) {
        const auto& c = net.config;
        return "<Pixel3DMMNet " + nn::to_string(c.prediction_type) + " backbone=" + c.backbone_name +
               " image_size=" + std::to_string(c.image_size) + ">";
      });

  m.def("load_network",
        [](const std::string& weights, const std::string& config) {
          return std::shared_ptr<nn::Pixel3DMMNetImpl>(nn::load_network(weights, config).ptr());
        },
        py::arg("weights"), py::arg("config") = "",
        "Loads a converted network (.safetensors + .json; config defaults to the weights path with .json), "
        "in eval mode. Strict: ValueError lists every missing, unexpected or mis-shaped tensor.");
  m.def("save_network",
        [](const std::shared_ptr<nn::Pixel3DMMNetImpl>& net, const std::string& weights, const std::string& config) {
          nn::save_network(nn::Pixel3DMMNet(net), weights, config);
        },
        py::arg("net"), py::arg("weights"), py::arg("config") = "",
        "Writes the weights (official names) and the config JSON, atomically.");
}

}  // namespace pixel3dmm::python
