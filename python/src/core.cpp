// Bindings of pixel3dmm/core: runtime information and threads.
#include "bindings.h"

#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/core/version.h"

namespace pixel3dmm::python {

void bind_core(py::module_& m) {
  m.attr("__version__") = PIXEL3DMM_VERSION_STRING;
  m.def(
      "runtime_info",
      [] {
        const RuntimeInfo r = runtime_info();
        py::dict d;
        d["pixel3dmm"] = r.pixel3dmm_version;
        d["libtorch"] = r.torch_version;
        d["opencv"] = r.opencv_version;
        d["blas"] = r.blas_kind;
        d["blas_library"] = r.blas_library;
        d["num_threads"] = r.num_threads;
        d["hardware_threads"] = r.hardware_threads;
        d["openmp_wait"] = r.openmp_wait;
        return d;
      },
      "Versions, the BLAS LibTorch uses and thread counts, as a dict.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Sets LibTorch's intra-op threads (shared with torch); n <= 0 means all cores.");
  m.def("init_runtime", &init_runtime,
        "Threads from $PIXEL3DMM_NUM_THREADS or the core count; warns once about a reference BLAS.");
  m.def("blas_is_reference", &blas_is_reference, "True when LibTorch's sgemm_ is the slow reference BLAS.");
  m.def("measure_gemm_gflops", &measure_gemm_gflops, py::arg("n") = 512,
        "Measured float32 GEMM rate (GFLOP/s) of an n x n x n product.");
}

}  // namespace pixel3dmm::python
