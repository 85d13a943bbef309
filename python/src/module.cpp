// pixel3dmm._C: submodules mirror the C++ namespaces.
#include "bindings.h"

#include <cstring>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::python {
void bind_preprocess_official(py::module_& m);  // preprocess_official.cpp: FaceBoxesV2 and the official crop
void bind_preprocess_retinaface(py::module_& m);  // preprocess_retinaface.cpp: facer's RetinaFace
void bind_identity(py::module_& m);  // identity.cpp
}  // namespace pixel3dmm::python

PYBIND11_MODULE(_C, m) {
  namespace py = pybind11;
  using namespace pixel3dmm::python;
  m.doc() = "pixel3dmm C++ core (LibTorch). Use the `pixel3dmm` package rather than this module directly.";

  // pixel3dmm exceptions -> the Python exception a user expects (FormatError derives from ValueError). Messages
  // quote bytes from corrupt files, which need not be UTF-8: undecodable bytes show as \xNN instead of the
  // message being lost to a UnicodeDecodeError.
  py::register_exception_translator([](std::exception_ptr p) {
    auto set = [](PyObject* type, const char* what) {
      PyObject* text = PyUnicode_DecodeUTF8(what, static_cast<Py_ssize_t>(std::strlen(what)), "backslashreplace");
      PyErr_SetObject(type, text);
      Py_XDECREF(text);
    };
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pixel3dmm::FileNotFound& e) {
      set(PyExc_FileNotFoundError, e.what());
    } catch (const pixel3dmm::ValueError& e) {
      set(PyExc_ValueError, e.what());
    } catch (const pixel3dmm::Error& e) {
      set(PyExc_RuntimeError, e.what());
    }
  });

  bind_core(m);
  auto io = m.def_submodule("io", "Files: safetensors, .npy/.npz, meshes, images, JSON configs");
  bind_io(io);
  auto flame = m.def_submodule("flame", "FLAME: model files, the differentiable model, rotations, synthetic model");
  bind_flame(flame);
  auto nn = m.def_submodule("nn", "The Pixel3DMM network: ViT backbone, prediction head, checkpoint loading");
  bind_nn(nn);
  auto predict = m.def_submodule("predict", "Face crop -> UV and normal maps (mirror averaging, official PNGs)");
  bind_predict(predict);
  auto render = m.def_submodule("render", "Camera, differentiable rasteriser (rasterize, interpolate, antialias), "
                                          "MeshRenderer");
  bind_render(render);
  auto fit = m.def_submodule("fit", "Fitting FLAME and the camera to UV and normal maps");
  bind_fit(fit);
  auto preprocess = m.def_submodule("preprocess", "Photo -> face crop, 68 landmarks, pupils and masks (dlib)");
  bind_preprocess(preprocess);
  bind_preprocess_official(preprocess);
  bind_preprocess_retinaface(preprocess);
  auto reconstruct = m.def_submodule("reconstruct", "Photo -> mesh: preprocess, predict and fit in one object");
  bind_reconstruct(reconstruct);
  auto train = m.def_submodule("train", "Training: datasets (manifest, samples, checks), synthetic dataset generator, Trainer");
  bind_train(train);
  auto eval = m.def_submodule("eval", "The benchmark: nearest neighbours, Chamfer / R2.5 / normal consistency, "
                                      "NoW-landmark + ICP alignment, synthetic benchmark, runner");
  bind_eval(eval);
  auto track = m.def_submodule("track", "Video tracking: online and global stages, resumable state, synthetic videos");
  bind_track(track);
  auto identity = m.def_submodule("identity", "MICA: ArcFace alignment and network -> 300 FLAME identity coefficients");
  bind_identity(identity);
}
