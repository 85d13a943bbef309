// Bindings of pixel3dmm/io/mesh.h, image.h and config.h.
#include <optional>

#include "bindings.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/mesh.h"

namespace pixel3dmm::python {

namespace {

std::string mesh_repr(const io::Mesh& m) {
  auto rows = [](const torch::Tensor& t) { return t.defined() ? std::to_string(t.size(0)) : std::string("None"); };
  std::string s = "Mesh(vertices=" + rows(m.vertices) + ", faces=" + rows(m.faces);
  if (m.normals.defined()) s += ", normals=" + rows(m.normals);
  if (m.colors.defined()) s += ", colors=" + rows(m.colors);
  if (m.uvs.defined()) s += ", uvs=" + rows(m.uvs) + (m.uv_faces.defined() ? ", uv_faces=" + rows(m.uv_faces) : "");
  return s + ")";
}

}  // namespace

void bind_io_files(py::module_& m) {
  // --- meshes ---
  py::class_<io::Mesh> mesh(m, "Mesh",
                            "A triangle mesh. Fields are torch.Tensor or None; assigning a NumPy array converts it.\n"
                            "vertices: V x 3 float32; faces: F x 3 int64 (0-based); normals: V x 3; colors: V x 3 "
                            "in [0, 1];\nuvs: T x 2 (u, v), v up as in OBJ; uv_faces: F x 3 int64 into uvs (None: "
                            "UVs are per vertex, T == V).");
  mesh.def(py::init([](const py::object& vertices, const py::object& faces, const py::object& normals,
                       const py::object& colors, const py::object& uvs, const py::object& uv_faces) {
             io::Mesh r;
             r.vertices = to_tensor(vertices);
             r.faces = to_tensor(faces);
             r.normals = to_tensor(normals);
             r.colors = to_tensor(colors);
             r.uvs = to_tensor(uvs);
             r.uv_faces = to_tensor(uv_faces);
             return r;
           }),
           py::arg("vertices") = py::none(), py::arg("faces") = py::none(), py::arg("normals") = py::none(),
           py::arg("colors") = py::none(), py::arg("uvs") = py::none(), py::arg("uv_faces") = py::none());
  def_tensor_field(mesh, "vertices", &io::Mesh::vertices, "V x 3 float32 positions");
  def_tensor_field(mesh, "faces", &io::Mesh::faces, "F x 3 int64 vertex indices (0-based)");
  def_tensor_field(mesh, "normals", &io::Mesh::normals, "V x 3 float32 per-vertex normals, or None");
  def_tensor_field(mesh, "colors", &io::Mesh::colors, "V x 3 float32 per-vertex colours in [0, 1], or None");
  def_tensor_field(mesh, "uvs", &io::Mesh::uvs, "T x 2 float32 texture coordinates (u, v), v up; or None");
  def_tensor_field(mesh, "uv_faces", &io::Mesh::uv_faces,
                   "F x 3 int64 indices into uvs per face corner, or None (per-vertex UVs)");
  mesh.def("validate", &io::validate_mesh, "Checks shapes, dtypes, index ranges and finiteness (ValueError).");
  mesh.def("__repr__", &mesh_repr);

  m.def("read_mesh", &io::read_mesh, py::arg("path"),
        "Reads a PLY (ascii / binary, either endianness) or OBJ mesh; polygons are fan-triangulated.");
  m.def("write_ply", &io::write_ply, py::arg("path"), py::arg("mesh"), py::arg("binary") = true,
        "Writes a PLY (binary little endian, or ASCII) with the mesh's optional normals, colours (uchar) and UVs.");
  m.def("write_obj", &io::write_obj, py::arg("path"), py::arg("mesh"), py::arg("texture_path") = "",
        "Writes an OBJ (v, vt, vn, f v/vt/vn); with texture_path also <stem>.mtl with map_Kd texture_path.");
  m.def("write_mesh", &io::write_mesh, py::arg("path"), py::arg("mesh"), "Writes .ply (binary) or .obj by extension.");

  // --- images ---
  m.def("read_image", &io::read_image, py::arg("path"),
        "Reads an image as a float32 1 x 3 x H x W RGB tensor (8-bit / 255, 16-bit / 65535, EXR as stored).");
  m.def(
      "write_image",
      [](const std::string& path, const py::object& image, int bit_depth) {
        io::write_image(path, to_tensor(image), bit_depth);
      },
      py::arg("path"), py::arg("image"), py::arg("bit_depth") = 8,
      "Writes a 1 x C x H x W, C x H x W or H x W float image (C in 1, 3, 4), clamped to [0, 1] for 8/16-bit "
      "formats; .exr stores float32 as is.");
  m.def("max_image_pixels", &io::max_image_pixels, "The largest width x height read_image accepts.");
  m.def("set_max_image_pixels", &io::set_max_image_pixels, py::arg("pixels"),
        "Sets the largest width x height read_image accepts (default 100 megapixels).");

  // --- JSON configs ---
  m.def(
      "read_json", [](const std::string& path) { return from_json(io::read_json(path)); }, py::arg("path"),
      "Reads a JSON file (comments allowed); syntax errors name the line and column.");
  m.def(
      "write_json", [](const std::string& path, const py::object& value) { io::write_json(path, to_json(value)); },
      py::arg("path"), py::arg("value"), "Writes pretty-printed JSON atomically.");
  m.def(
      "apply_overrides",
      [](const py::object& config, const std::vector<std::string>& overrides) {
        io::json j = to_json(config);
        io::apply_overrides(j, overrides);
        return from_json(j);
      },
      py::arg("config"), py::arg("overrides"),
      "Returns a copy of config with 'a.b.c=value' overrides applied (value parsed as JSON, else a string).");
}

}  // namespace pixel3dmm::python
