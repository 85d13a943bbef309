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

}  // namespace pixel3dmm::python
