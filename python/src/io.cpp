// Bindings of pixel3dmm/io. (Filled in by the I/O work.)
#include "bindings.h"

namespace pixel3dmm::python {

void bind_io(py::module_& m) { (void)m; }

}  // namespace pixel3dmm::python
