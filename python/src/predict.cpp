// Bindings of pixel3dmm/predict: the Predictor and the official PNG encodings.
#include "bindings.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/predict/demo_model.h"
#include "pixel3dmm/predict/predictor.h"

namespace pixel3dmm::python {

void bind_predict(py::module_& m) {
  py::class_<predict::Predictions> predictions(
      m, "Predictions",
      "The maps for a batch of crops (Predictor.predict returns the same tensors as a dict): uv B x 2 x H x W\n"
      "(u, 1 - v) in [0, 1]; normals B x 3 x H x W (FLAME frame, unit); uv_raw, normals_raw: averaged raw outputs.");
  predictions.def(py::init<>());
  def_tensor_field(predictions, "uv", &predict::Predictions::uv);
  def_tensor_field(predictions, "normals", &predict::Predictions::normals);
  def_tensor_field(predictions, "uv_raw", &predict::Predictions::uv_raw);
  def_tensor_field(predictions, "normals_raw", &predict::Predictions::normals_raw);
  predictions.def("__repr__", [](const predict::Predictions& p) {
    auto shape = [](const torch::Tensor& t) { return t.defined() ? shape_string(t.sizes()) : std::string("None"); };
    return "Predictions(uv=" + shape(p.uv) + ", normals=" + shape(p.normals) + ")";
  });

  py::class_<predict::Predictor>(m, "Predictor", "Face crop -> UV and normal maps with mirror averaging.")
      .def(py::init([](const std::string& uv, const std::string& normals, bool mirror, bool batch_mirror,
                       const std::string& precision) {
             return predict::Predictor::load(uv, normals,
                                             {mirror, batch_mirror, predict::parse_precision(precision)});
           }),
           py::arg("uv") = "", py::arg("normals") = "", py::arg("mirror") = true, py::arg("batch_mirror") = true,
           py::arg("precision") = "float32",
           "Loads converted networks (.safetensors paths, .json beside them); an empty path skips that network.")
      .def(py::init([](const py::object& uv, const py::object& normals, bool mirror, bool batch_mirror,
                       const std::string& precision) {
             auto get = [](const py::object& o) {
               return o.is_none() ? nn::Pixel3DMMNet(nullptr)
                                  : nn::Pixel3DMMNet(o.cast<std::shared_ptr<nn::Pixel3DMMNetImpl>>());
             };
             return predict::Predictor(get(uv), get(normals),
                                       {mirror, batch_mirror, predict::parse_precision(precision)});
           }),
           py::arg("uv_net"), py::arg("normals_net"), py::arg("mirror") = true, py::arg("batch_mirror") = true,
           py::arg("precision") = "float32",
           "From networks already built (either may be None).")
      .def(
          "predict",
          [](const predict::Predictor& p, const torch::Tensor& rgb) {
            py::gil_scoped_release release;
            auto r = p.predict(rgb);
            py::gil_scoped_acquire acquire;
            py::dict d;
            if (r.uv.defined()) {
              d["uv"] = r.uv;
              d["uv_raw"] = r.uv_raw;
            }
            if (r.normals.defined()) {
              d["normals"] = r.normals;
              d["normals_raw"] = r.normals_raw;
            }
            return d;
          },
          py::arg("rgb"),
          "rgb: B x 3 x H x W float32 in [0, 1] -> dict: uv (B x 2 x S x S, (u, 1 - v) in [0, 1]), normals "
          "(B x 3 x S x S unit vectors, (n0, -n2, -n1)), uv_raw / normals_raw (averaged raw outputs).")
      .def("prepare", &predict::Predictor::prepare, py::arg("rgb"),
           "The network input: B x 3 x H x W -> B x 3 x S x S (Pillow-exact bicubic resize).")
      .def_property_readonly("image_size", &predict::Predictor::image_size)
      .def_property_readonly("precision",
                             [](const predict::Predictor& p) { return predict::to_string(p.options().precision); })
      .def("__repr__", [](const predict::Predictor& p) {
        return std::string("<Predictor uv=") + (p.uv_net() ? "yes" : "no") +
               " normals=" + (p.normals_net() ? "yes" : "no") + " mirror=" + (p.options().mirror ? "True" : "False") +
               " precision=" + predict::to_string(p.options().precision) +
               " image_size=" + std::to_string(p.image_size()) + ">";
      });
  m.def("cpu_has_native_bf16", &predict::cpu_has_native_bf16,
        "Whether this CPU multiplies bfloat16 natively (avx512_bf16 or amx_bf16): what precision='bf16' needs.");
  m.def("unmirror",
        [](const torch::Tensor& out, const std::string& type) { return predict::unmirror(out, nn::parse_prediction_type(type)); },
        py::arg("out"), py::arg("prediction_type"),
        "The official un-mirroring: B x C x H x W -> flipped back, channel 0 negated (+ 0.015 for 'uv_map').");
  m.def("uv_png", &predict::uv_png, py::arg("uv_raw"),
        "Official uv_map PNG pixels: B x 2 x H x W raw -> B x H x W x 3 uint8.");
  m.def("normals_png", &predict::normals_png, py::arg("normals_raw"),
        "Official normals PNG pixels: B x 3 x H x W raw -> B x H x W x 3 uint8.");
  m.def("side_by_side_png", &predict::side_by_side_png, py::arg("rgb"), py::arg("png"),
        "Official p3dmm_wGT picture: rgb B x 3 x H x W, png B x H x W x 3 uint8 -> B x H x 2W x 3 uint8.");
  m.def("write_png_rgb8", &predict::write_png_rgb8, py::arg("path"), py::arg("pixels"),
        "Writes H x W x 3 uint8 RGB as PNG, atomically.");
  m.def(
      "demo_network",
      [](const std::string& type) { return predict::demo_network(nn::parse_prediction_type(type)).ptr(); },
      py::arg("type"),
      "A fresh copy of the demo network embedded in the library ('uv_map' or 'normals'; training/README.md): small, "
      "trained on synthetic photos of the synthetic FLAME-layout model, 128 x 128 input.");
}

}  // namespace pixel3dmm::python
