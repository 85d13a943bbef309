#pragma once
// Shared by the binding files: one `bind_<namespace>(module)` per C++ namespace, called from module.cpp.
// The bindings only translate: argument conversion, docstrings, exceptions. No algorithm lives here.
#include <torch/extension.h>

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

/// None -> undefined tensor; anything torch.as_tensor accepts (tensor, NumPy array, nested lists) -> tensor.
inline torch::Tensor to_tensor(const py::object& obj) {
  if (obj.is_none()) return torch::Tensor();
  if (THPVariable_Check(obj.ptr())) return obj.cast<torch::Tensor>();
  return py::module_::import("torch").attr("as_tensor")(obj).cast<torch::Tensor>();
}

/// Undefined tensor -> None.
inline py::object from_tensor(const torch::Tensor& t) {
  if (!t.defined()) return py::none();
  return py::cast(t);
}

}  // namespace pixel3dmm::python
