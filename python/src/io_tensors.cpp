// Bindings of pixel3dmm/io/safetensors.h and pixel3dmm/io/npy.h.
#include "bindings.h"

namespace pixel3dmm::python {

void bind_io_tensors(py::module_& m) { (void)m; }

}  // namespace pixel3dmm::python
