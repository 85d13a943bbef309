// Meshes: PLY/OBJ round trips, hand-written files in every supported layout, and corrupt inputs.
#include <filesystem>
#include <fstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/mesh.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::io;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

/// A small closed mesh (octahedron) with every optional attribute, per-vertex UVs.
Mesh octahedron() {
  Mesh m;
  m.vertices = torch::tensor({1.f, 0.f, 0.f, -1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, -1.f, 0.f, 0.f, 0.f, 1.f, 0.f,
                              0.f, -1.f})
                   .reshape({6, 3}) *
               0.123456789f;  // not exactly representable in short decimals
  m.faces = torch::tensor({0, 2, 4, 2, 1, 4, 1, 3, 4, 3, 0, 4, 2, 0, 5, 1, 2, 5, 3, 1, 5, 0, 3, 5}, torch::kLong)
                .reshape({8, 3});
  m.normals = torch::nn::functional::normalize(m.vertices, torch::nn::functional::NormalizeFuncOptions().dim(1));
  m.colors = torch::tensor({0.f, 0.25f, 0.5f, 1.f, 0.75f, 0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 0.8f, 0.7f, 0.f, 0.f, 0.f,
                            1.f, 1.f, 1.f})
                 .reshape({6, 3});
  m.uvs = torch::rand({6, 2}, torch::Generator(at::detail::createCPUGenerator(7)));
  return m;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

template <typename T>
void put_be(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  std::reverse(b, b + sizeof(T));  // the test machine is little endian
  out.append(b, sizeof(T));
}

/// Per-corner UVs as an F x 3 x 2 tensor, whatever the UV layout.
torch::Tensor corner_uvs(const Mesh& m) {
  const auto idx = m.uv_faces.defined() ? m.uv_faces : m.faces;
  return m.uvs.index_select(0, idx.reshape(-1)).reshape({-1, 3, 2});
}

}  // namespace

TEST_CASE("PLY binary and ASCII round trips keep every attribute", "[io][mesh]") {
  TempDir dir;
  const Mesh m = octahedron();
  for (bool binary : {true, false}) {
    INFO("binary " << binary);
    const std::string path = dir.file(binary ? "b.ply" : "a.ply");
    write_ply(path, m, binary);
    const std::string head = read_file(path).substr(0, 60);
    REQUIRE(head.find(binary ? "binary_little_endian" : "format ascii") != std::string::npos);
    const Mesh r = read_mesh(path);
    REQUIRE(r.vertices.scalar_type() == torch::kFloat);
    REQUIRE(r.faces.scalar_type() == torch::kLong);
    require_close(r.vertices, m.vertices, 0.0);  // shortest round-trip decimals are exact in ASCII too
    REQUIRE(torch::equal(r.faces, m.faces));
    require_close(r.normals, m.normals, 0.0);
    require_close(r.colors, m.colors, 0.5 / 255.0 + 1e-7);  // stored as uchar
    require_close(r.uvs, m.uvs, 0.0);
    REQUIRE_FALSE(r.uv_faces.defined());  // per-vertex UVs stay per vertex
  }
}

TEST_CASE("PLY keeps per-corner UVs as a texcoord list and shares equal UV pairs", "[io][mesh]") {
  TempDir dir;
  Mesh m;
  m.vertices = torch::tensor({0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 0.f}).reshape({4, 3});
  m.faces = torch::tensor({0, 1, 2, 0, 2, 3}, torch::kLong).reshape({2, 3});
  m.uvs = torch::tensor({0.f, 0.f, 0.5f, 0.f, 0.5f, 0.5f, 0.f, 0.5f, 0.9f, 0.9f}).reshape({5, 2});
  m.uv_faces = torch::tensor({0, 1, 2, 4, 2, 3}, torch::kLong).reshape({2, 3});  // a seam at vertex 0
  for (bool binary : {true, false}) {
    const std::string path = dir.file("corner.ply");
    write_ply(path, m, binary);
    REQUIRE(read_file(path).find("property list uchar float texcoord") != std::string::npos);
    const Mesh r = read_mesh(path);
    REQUIRE(r.uv_faces.defined());
    REQUIRE(r.uvs.size(0) == 5);  // 6 corners, 5 distinct pairs
    require_close(corner_uvs(r), corner_uvs(m), 0.0);
  }
}

TEST_CASE("OBJ round trip with per-corner UVs, normals, colours and an .mtl", "[io][mesh]") {
  TempDir dir;
  Mesh m = octahedron();
  m.uvs = torch::rand({10, 2}, torch::Generator(at::detail::createCPUGenerator(3)));
  m.uv_faces = torch::randint(0, 10, {8, 3}, torch::Generator(at::detail::createCPUGenerator(4)), torch::kLong);
  const std::string path = dir.file("head.obj");
  write_obj(path, m, "head_texture.png");

  const std::string obj = read_file(path);
  REQUIRE(obj.find("mtllib head.mtl\n") != std::string::npos);
  REQUIRE(obj.find("usemtl material0\n") != std::string::npos);
  REQUIRE(obj.find("\nf 1/") != std::string::npos);
  const std::string mtl = read_file(dir.file("head.mtl"));
  REQUIRE(mtl.find("newmtl material0\n") != std::string::npos);
  REQUIRE(mtl.find("map_Kd head_texture.png\n") != std::string::npos);

  const Mesh r = read_mesh(path);
  require_close(r.vertices, m.vertices, 0.0);
  REQUIRE(torch::equal(r.faces, m.faces));
  require_close(r.normals, m.normals, 0.0);
  require_close(r.colors, m.colors, 0.0);  // OBJ colours are floats
  require_close(r.uvs, m.uvs, 0.0);
  REQUIRE(torch::equal(r.uv_faces, m.uv_faces));

  // Without a texture: no mtllib; per-vertex UVs come back per corner with vt index == v index.
  const Mesh p = octahedron();
  write_obj(dir.file("plain.obj"), p);
  REQUIRE(read_file(dir.file("plain.obj")).find("mtllib") == std::string::npos);
  const Mesh q = read_mesh(dir.file("plain.obj"));
  REQUIRE(torch::equal(q.uv_faces, p.faces));
  require_close(q.uvs, p.uvs, 0.0);
  write_mesh(dir.file("dispatch.PLY"), p);
  REQUIRE(read_file(dir.file("dispatch.PLY")).substr(0, 4) == "ply\n");
}

TEST_CASE("OBJ reader: polygons, negative indices, v//vn, comments, ignored statements", "[io][mesh]") {
  TempDir dir;
  const std::string path = dir.file("quad.obj");
  write_text(path,
             "# a comment\r\n"
             "mtllib x.mtl\n"
             "o thing\n"
             "v 0 0 0\nv 1 0 0 # trailing comment\nv 1 1 0\nv 0 1 0\nv 2 0 0\n"
             "vn 0 0 1\n"
             "g group\ns off\nusemtl m\n"
             "f 1//1 2//1 3//1 4//1\n"    // quad -> 2 triangles
             "f -4//-1 -1//-1 -3//-1\n"   // negative: vertices 2, 5, 3
             "l 1 2\n");
  const Mesh m = read_mesh(path);
  REQUIRE(m.vertices.size(0) == 5);
  REQUIRE(torch::equal(m.faces, torch::tensor({0, 1, 2, 0, 2, 3, 1, 4, 2}, torch::kLong).reshape({3, 3})));
  REQUIRE(m.normals.defined());
  require_close(m.normals[4], torch::tensor({0.f, 0.f, 1.f}), 0.0);
  REQUIRE_FALSE(m.uvs.defined());

  // v/vt on a pentagon; a vertex whose corners name two normals gets their normalised mean.
  write_text(path,
             "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv -1 0 0\n"
             "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvt 0.5 0.5\n"
             "vn 1 0 0\nvn 0 1 0\n"
             "f 1/1/1 2/2/1 3/3/1 4/4/1 5/5/1\n"
             "f 1/1/2 3/3/2 4/4/2\n");
  const Mesh p = read_mesh(path);
  REQUIRE(p.faces.size(0) == 4);
  REQUIRE(torch::equal(p.uv_faces, p.faces));
  require_close(p.normals[0], torch::tensor({1.f, 1.f, 0.f}) / std::sqrt(2.f), 1e-6);
  require_close(p.normals[1], torch::tensor({1.f, 0.f, 0.f}), 0.0);
}

TEST_CASE("PLY reader: big endian, mixed types, quads, extra properties and elements", "[io][mesh]") {
  TempDir dir;
  std::string bytes =
      "ply\r\nformat binary_big_endian 1.0\r\ncomment made by hand\r\nobj_info x\r\n"
      "element vertex 4\r\nproperty double x\r\nproperty double y\r\nproperty double z\r\n"
      "property ushort red\r\nproperty ushort green\r\nproperty ushort blue\r\nproperty float confidence\r\n"
      "property list uchar int junk\r\n"
      "element material 1\r\nproperty list int char name\r\n"
      "element face 1\r\nproperty uchar flags\r\nproperty list int uint vertex_indices\r\nend_header\r\n";
  for (int i = 0; i < 4; ++i) {
    put_be<double>(bytes, i * 0.5);
    put_be<double>(bytes, -i);
    put_be<double>(bytes, 1e-3 * i);
    for (int c = 0; c < 3; ++c) put_be<uint16_t>(bytes, static_cast<uint16_t>(c == 0 ? 65535 : 0));
    put_be<float>(bytes, 0.5f);
    bytes += char(2);
    put_be<int32_t>(bytes, 7);
    put_be<int32_t>(bytes, 8);
  }
  put_be<int32_t>(bytes, 3);
  bytes += "abc";
  bytes += char(9);
  put_be<int32_t>(bytes, 4);
  for (uint32_t i : {3u, 2u, 1u, 0u}) put_be<uint32_t>(bytes, i);
  write_text(dir.file("be.ply"), bytes);
  const Mesh m = read_mesh(dir.file("be.ply"));
  require_close(m.vertices[3], torch::tensor({1.5f, -3.f, 0.003f}), 1e-7);
  REQUIRE(torch::equal(m.faces, torch::tensor({3, 2, 1, 3, 1, 0}, torch::kLong).reshape({2, 3})));
  require_close(m.colors[2], torch::tensor({1.f, 0.f, 0.f}), 0.0);  // 16-bit colours / 65535
  REQUIRE_FALSE(m.normals.defined());

  // ASCII with a vertex_index list of 4 and unknown properties, plus u/v UV names.
  write_text(dir.file("a.ply"),
             "ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
             "property float u\nproperty float v\nproperty int tag\nelement face 1\nproperty list uchar int "
             "vertex_index\nend_header\n0 0 0 0 0 1\n1 0 0 1 0 2\n1 1 0 1 1 3\n0 1 0 0 1 4\n4 0 1 2 3\n");
  const Mesh a = read_mesh(dir.file("a.ply"));
  REQUIRE(a.faces.size(0) == 2);
  require_close(a.uvs[2], torch::tensor({1.f, 1.f}), 0.0);
}

TEST_CASE("corrupt PLY files fail with messages naming the file and the element", "[io][mesh][corrupt]") {
  TempDir dir;
  const std::string good = dir.file("good.ply");
  write_ply(good, octahedron(), true);
  const std::string data = read_file(good);

  SECTION("truncated binary data") {
    write_text(dir.file("cut.ply"), data.substr(0, data.size() - 7));
    require_throws_with<FormatError>([&] { read_mesh(dir.file("cut.ply")); },
                                     {"cut.ply", "element 'face'", "truncated binary data"});
  }
  SECTION("a vertex count larger than the file can hold is refused before allocating") {
    std::string big = data;
    const std::string from = "element vertex 6\n", to = "element vertex 4000000000\n";
    big.replace(big.find(from), from.size(), to);
    write_text(dir.file("big.ply"), big);
    require_throws_with<FormatError>([&] { read_mesh(dir.file("big.ply")); },
                                     {"big.ply:4", "element 'vertex' declares 4000000000 entries", "bytes"});
  }
  SECTION("a face index out of range") {
    write_text(dir.file("idx.ply"),
               "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
               "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
               "3 0 1 3\n");
    require_throws_with<FormatError>([&] { read_mesh(dir.file("idx.ply")); },
                                     {"idx.ply:13", "element 'face' entry 0", "vertex index 3 out of range",
                                      "3 vertices"});
  }
  SECTION("a bad header") {
    write_text(dir.file("hdr.ply"), "ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n");
    require_throws_with<FormatError>([&] { read_mesh(dir.file("hdr.ply")); }, {"hdr.ply:4", "unknown type 'float128'"});
    write_text(dir.file("nomagic.ply"), "PLY?\n");
    require_throws_with<FormatError>([&] { read_mesh(dir.file("nomagic.ply")); }, {"nomagic.ply", "not a PLY file"});
    write_text(dir.file("noend.ply"), "ply\nformat ascii 1.0\nelement vertex 1\n");
    require_throws_with<FormatError>([&] { read_mesh(dir.file("noend.ply")); }, {"noend.ply", "no 'end_header'"});
  }
  SECTION("non-finite and malformed ASCII values") {
    const std::string head =
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n"
        "end_header\n";
    write_text(dir.file("nan.ply"), head + "0 0 0\n1 nan 0\n");
    require_throws_with<FormatError>([&] { read_mesh(dir.file("nan.ply")); }, {"nan.ply", "vertex 1", "not finite"});
    write_text(dir.file("word.ply"), head + "0 0 0\n1 zero 0\n");
    require_throws_with<FormatError>([&] { read_mesh(dir.file("word.ply")); },
                                     {"word.ply:9", "property 'y'", "found 'zero'"});
    write_text(dir.file("short.ply"), head + "0 0 0\n1 0\n");  // too few bytes for 6 values
    require_throws_with<FormatError>([&] { read_mesh(dir.file("short.ply")); },
                                     {"short.ply:3", "declares 2 entries of at least 3 values"});
    write_text(dir.file("short.ply"), head + "0 0 0\n1 0" + std::string(20, ' ') + "\n");  // enough bytes
    require_throws_with<FormatError>([&] { read_mesh(dir.file("short.ply")); },
                                     {"short.ply:10", "element 'vertex' entry 1", "unexpected end of file"});
  }
  SECTION("a missing file") {
    require_throws_with<FileNotFound>([&] { read_mesh(dir.file("none.ply")); }, {"none.ply", "no such file"});
  }
}

TEST_CASE("corrupt OBJ files fail with messages naming the file and line", "[io][mesh][corrupt]") {
  TempDir dir;
  const std::string path = dir.file("bad.obj");
  write_text(path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 5\n");
  require_throws_with<FormatError>([&] { read_mesh(path); },
                                   {"bad.obj:4", "vertex index 5 out of range", "3 vertices"});
  write_text(path, "v 0 0 0\nv 1 abc 0\n");
  require_throws_with<FormatError>([&] { read_mesh(path); }, {"bad.obj:2", "malformed number 'abc'", "'v' line"});
  write_text(path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 -4\n");
  require_throws_with<FormatError>([&] { read_mesh(path); }, {"bad.obj:4", "relative vertex index -4"});
  write_text(path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\nf 1 2 3\n");
  require_throws_with<FormatError>([&] { read_mesh(path); }, {"bad.obj:6", "lacks a texture coordinate"});
  write_text(path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n");
  require_throws_with<FormatError>([&] { read_mesh(path); }, {"bad.obj:4", "index 0", "start at 1"});
  write_text(path, "v 0 0 inf\n");
  require_throws_with<FormatError>([&] { read_mesh(path); }, {"bad.obj:1", "non-finite value 'inf'"});
}

TEST_CASE("writers validate the mesh and never leave a partial file", "[io][mesh]") {
  TempDir dir;
  Mesh m = octahedron();
  m.faces[3][1] = 6;
  require_throws_with<ValueError>([&] { write_ply(dir.file("x.ply"), m); },
                                  {"x.ply", "mesh.faces", "face 3", "out of range for 6 vertices"});
  m = octahedron();
  m.normals = torch::zeros({5, 3});
  require_throws_with<ValueError>([&] { write_obj(dir.file("x.obj"), m); },
                                  {"x.obj", "mesh.normals", "expected shape [6, 3]", "found [5, 3]"});
  m = octahedron();
  m.vertices[0][0] = std::numeric_limits<float>::quiet_NaN();
  require_throws_with<ValueError>([&] { write_ply(dir.file("x.ply"), m); }, {"mesh.vertices", "non-finite"});
  m = octahedron();
  m.uvs = torch::zeros({4, 2});
  require_throws_with<ValueError>([&] { write_ply(dir.file("x.ply"), m); }, {"mesh.uvs", "4 rows", "no uv_faces"});
  require_throws_with<ValueError>([&] { write_mesh(dir.file("x.stl"), octahedron()); }, {"x.stl", "'.stl'"});
  REQUIRE(std::filesystem::is_empty(dir.path));
}
