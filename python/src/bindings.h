#pragma once
// Shared by the binding files: one `bind_<namespace>(module)` per C++ namespace, called from module.cpp.
// The bindings only translate: argument conversion, docstrings, exceptions. No algorithm lives here.
#include <torch/extension.h>

#include <cmath>
#include <string>

#include "pixel3dmm/fit/fit_config.h"
#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/io/config.h"

namespace pixel3dmm::preprocess {
struct PreprocessOptions;
}

namespace pixel3dmm::python {
namespace py = pybind11;

void bind_core(py::module_& m);
void bind_io(py::module_& m);
void bind_io_tensors(py::module_& m);
void bind_io_files(py::module_& m);
void bind_flame(py::module_& m);
void bind_nn(py::module_& m);
void bind_predict(py::module_& m);
void bind_render(py::module_& m);
void bind_fit(py::module_& m);
void bind_preprocess(py::module_& m);
void bind_reconstruct(py::module_& m);
void bind_train(py::module_& m);
void bind_eval(py::module_& m);
void bind_track(py::module_& m);

/// A dict with keys of configs/fit.json (None = the official defaults) -> FitConfig (fit.cpp).
fit::FitConfig fit_config_from(const py::object& config);
/// None (defaults), a PreprocessOptions or a dict of its fields -> PreprocessOptions; a dict that gives faceboxes
/// and no crop gets crop 'official', as the CLI's --faceboxes (preprocess.cpp). ValueError on an unknown field.
preprocess::PreprocessOptions preprocess_options_from(const py::object& options);
/// A Python callable(entry: dict) -> bool-or-None as a FitCallback; None from Python means "go on" (fit.cpp).
fit::FitCallback fit_callback_from(const py::object& fn);

/// None -> undefined tensor; anything torch.as_tensor accepts (tensor, NumPy array, nested lists) -> tensor.
inline torch::Tensor to_tensor(const py::object& obj) {
  if (obj.is_none()) return torch::Tensor();
  if (THPVariable_Check(obj.ptr())) return obj.cast<torch::Tensor>();
  return py::module_::import("torch").attr("as_tensor")(obj).cast<torch::Tensor>();
}

/// Python's json.dumps refuses NaN and Inf without saying where they are: find the first one and name its key path
/// ("lr.shape", "lr_decay[2]") in a ValueError.
inline void check_finite_config_numbers(const py::handle& obj, const std::string& path) {
  if (py::isinstance<py::float_>(obj)) {
    if (const double v = obj.cast<double>(); !std::isfinite(v))
      throw py::value_error("key '" + path + "': " + py::repr(obj).cast<std::string>() +
                            " is not a finite number (JSON settings hold finite numbers only)");
  } else if (py::isinstance<py::dict>(obj)) {
    for (const auto& [key, value] : obj.cast<py::dict>()) {
      const std::string name = py::str(key).cast<std::string>();
      check_finite_config_numbers(value, path.empty() ? name : path + "." + name);
    }
  } else if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    size_t i = 0;
    for (const auto& value : obj) check_finite_config_numbers(value, path + "[" + std::to_string(i++) + "]");
  }
}

/// Python object -> nlohmann::json through Python's json module (a config is small; exactness beats speed).
inline io::json to_json(const py::object& obj) {
  check_finite_config_numbers(obj, "");
  const std::string text =
      py::module_::import("json").attr("dumps")(obj, py::arg("allow_nan") = false).cast<std::string>();
  return io::json::parse(text);
}

inline py::object from_json(const io::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

/// Undefined tensor -> None.
inline py::object from_tensor(const torch::Tensor& t) {
  if (!t.defined()) return py::none();
  return py::cast(t);
}

/// A read/write tensor property of a bound struct: None <-> undefined, NumPy arrays and lists converted.
template <typename Class, typename... Extra>
void def_tensor_field(py::class_<Class>& cls, const char* name, torch::Tensor Class::*field, const Extra&... extra) {
  cls.def_property(
      name, [field](const Class& self) { return from_tensor(self.*field); },
      [field](Class& self, const py::object& v) { self.*field = to_tensor(v); }, extra...);
}

}  // namespace pixel3dmm::python
