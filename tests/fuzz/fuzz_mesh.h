#pragma once
// The mesh targets' one body (fuzz_obj, fuzz_ply): io::read_mesh picks the parser by the file's extension.
#include "fuzz_util.h"
#include "pixel3dmm/io/mesh.h"

namespace fuzz {

/// Writes the input to <scratch>/<name> and reads it as a mesh. A pixel3dmm::Error is a clear error (fine); what
/// read_mesh returns must pass validate_mesh, else its throw escapes, aborts, and is a finding.
inline int read_mesh_input(const char* name, const uint8_t* data, size_t size) {
  const std::string path = write_file(name, data, size);
  pixel3dmm::io::Mesh mesh;
  try {
    mesh = pixel3dmm::io::read_mesh(path);
  } catch (const pixel3dmm::Error&) {
    return 0;
  }
  pixel3dmm::io::validate_mesh(mesh);
  return 0;
}

}  // namespace fuzz
