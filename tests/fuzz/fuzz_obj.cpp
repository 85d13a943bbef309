// libFuzzer target: io::read_mesh on a Wavefront .obj (v/vt/vn/f records, negative indices, polygons).
#include "fuzz_mesh.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::read_mesh_input("in.obj", data, size);
}
