// Bindings of pixel3dmm/io: tensor containers (safetensors, .npy/.npz) and files (meshes, images, configs),
// each bound in its own file.
#include "bindings.h"

namespace pixel3dmm::python {

void bind_io(py::module_& m) {
  bind_io_tensors(m);
  bind_io_files(m);
}

}  // namespace pixel3dmm::python
