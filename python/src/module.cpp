// pixel3dmm._C: submodules mirror the C++ namespaces.
#include "bindings.h"

#include "pixel3dmm/core/error.h"

PYBIND11_MODULE(_C, m) {
  namespace py = pybind11;
  using namespace pixel3dmm::python;
  m.doc() = "pixel3dmm C++ core (LibTorch). Use the `pixel3dmm` package rather than this module directly.";

  // pixel3dmm exceptions -> the Python exception a user expects (FormatError derives from ValueError).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pixel3dmm::FileNotFound& e) {
      PyErr_SetString(PyExc_FileNotFoundError, e.what());
    } catch (const pixel3dmm::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const pixel3dmm::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  bind_core(m);
  auto io = m.def_submodule("io", "Files: safetensors, .npy/.npz, meshes, images, JSON configs");
  bind_io(io);
  auto nn = m.def_submodule("nn", "The Pixel3DMM network: ViT backbone, prediction head, checkpoint loading");
  bind_nn(nn);
  auto predict = m.def_submodule("predict", "Face crop -> UV and normal maps (mirror averaging, official PNGs)");
  bind_predict(predict);
}
