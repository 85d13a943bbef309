// libFuzzer target: io::read_mesh on a .ply (ASCII and binary headers, element counts, list properties).
#include "fuzz_mesh.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::read_mesh_input("in.ply", data, size);
}
