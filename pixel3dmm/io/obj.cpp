// Wavefront OBJ (+ .mtl) reading and writing.
//
// Reading understands v (with optional w, or r g b vertex colours), vt, vn and f with v, v/vt, v//vn and v/vt/vn
// corners, 1-based and negative (relative) indices, polygons (fan-triangulated) and # comments; every other
// statement (o, g, s, usemtl, mtllib, l, p, ...) is ignored. Errors name the file and line.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/detail/mesh_common.h"

namespace pixel3dmm::io {

namespace detail {
namespace {

/// One triangle corner as 0-based indices (-1: absent); the line is kept for range errors found at the end.
struct Corner {
  int64_t v, vt, vn;
};

class ObjParser {
 public:
  explicit ObjParser(const std::string& path) : path_(path) {}

  Mesh parse(const std::string& data) {
    size_t pos = 0;
    while (pos < data.size()) {
      size_t eol = data.find('\n', pos);
      if (eol == std::string::npos) eol = data.size();
      std::string_view line(data.data() + pos, eol - pos);
      pos = eol + 1;
      ++line_;
      const size_t hash = line.find('#');
      if (hash != std::string_view::npos) line = line.substr(0, hash);
      tokens_.clear();
      split(line);
      if (tokens_.empty()) continue;
      const std::string_view key = tokens_[0];
      if (key == "v") {
        parse_vertex();
      } else if (key == "vt") {
        expect_count(2, 4, "vt");
        uvs_.push_back(number(1, "vt"));
        uvs_.push_back(tokens_.size() > 2 ? number(2, "vt") : 0.0f);
        if (tokens_.size() > 3) number(3, "vt");  // w: checked, unused
      } else if (key == "vn") {
        expect_count(4, 4, "vn");
        for (int k = 1; k <= 3; ++k) vn_.push_back(number(k, "vn"));
      } else if (key == "f") {
        parse_face();
      }
    }
    return finish();
  }

 private:
  static bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

  void split(std::string_view line) {
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && space(line[i])) ++i;
      const size_t start = i;
      while (i < line.size() && !space(line[i])) ++i;
      if (i > start) tokens_.push_back(line.substr(start, i - start));
    }
  }

  [[noreturn]] void fail(const std::string& msg) const { throw FormatError(concat(path_, ":", line_, ": ", msg)); }

  void expect_count(size_t lo, size_t hi, const char* key) const {
    if (tokens_.size() < lo || tokens_.size() > hi) {
      fail(concat("'", key, "' line with ", tokens_.size() - 1, " values (expected ", lo - 1,
                  lo == hi ? "" : concat(" to ", hi - 1), ")"));
    }
  }

  float number(size_t k, const char* key) const {
    std::string_view s = tokens_[k];
    if (!s.empty() && s[0] == '+') s.remove_prefix(1);
    float v = 0.0f;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
      fail(concat("malformed number '", tokens_[k], "' in '", key, "' line"));
    }
    if (!std::isfinite(v)) fail(concat("non-finite value '", tokens_[k], "' in '", key, "' line"));
    return v;
  }

  void parse_vertex() {
    // v x y z | v x y z w | v x y z r g b (a common extension for vertex colours)
    if (tokens_.size() != 4 && tokens_.size() != 5 && tokens_.size() != 7) {
      fail(concat("'v' line with ", tokens_.size() - 1, " values (expected 3, 4, or 6 with colours)"));
    }
    for (int k = 1; k <= 3; ++k) positions_.push_back(number(k, "v"));
    if (tokens_.size() == 7) {
      for (int k = 4; k <= 6; ++k) colors_.push_back(number(k, "v"));
    } else {
      some_vertex_lacks_color_ = true;
      if (tokens_.size() == 5) number(4, "v");
    }
  }

  /// Resolves a 1-based or negative OBJ index against `count` elements defined so far.
  int64_t resolve(std::string_view s, int64_t count, const char* what) const {
    int64_t i = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), i);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
      fail(concat("malformed ", what, " index '", s, "' in 'f' line"));
    }
    if (i == 0) fail(concat(what, " index 0 in 'f' line (OBJ indices start at 1)"));
    if (i < 0) {
      if (count + i < 0) {
        fail(concat("relative ", what, " index ", i, " reaches before the first ", what, " (", count, " defined)"));
      }
      return count + i;
    }
    return i - 1;  // range-checked at the end: forward references are legal in some writers
  }

  void parse_face() {
    if (tokens_.size() < 4) fail(concat("'f' line with ", tokens_.size() - 1, " corners (at least 3 needed)"));
    const int64_t nv = static_cast<int64_t>(positions_.size() / 3);
    const int64_t nt = static_cast<int64_t>(uvs_.size() / 2);
    const int64_t nn = static_cast<int64_t>(vn_.size() / 3);
    poly_.clear();
    for (size_t k = 1; k < tokens_.size(); ++k) {
      const std::string_view t = tokens_[k];
      const size_t s1 = t.find('/');
      const size_t s2 = s1 == std::string_view::npos ? s1 : t.find('/', s1 + 1);
      Corner c{-1, -1, -1};
      c.v = resolve(t.substr(0, s1), nv, "vertex");
      if (s1 != std::string_view::npos) {
        const std::string_view vt = t.substr(s1 + 1, s2 == std::string_view::npos ? std::string_view::npos : s2 - s1 - 1);
        if (!vt.empty()) c.vt = resolve(vt, nt, "texture coordinate");
        if (s2 != std::string_view::npos) c.vn = resolve(t.substr(s2 + 1), nn, "normal");
      }
      const int has_vt = c.vt >= 0 ? 1 : 0;
      if (faces_have_vt_ < 0) {
        faces_have_vt_ = has_vt;
        first_face_line_ = line_;
      } else if (faces_have_vt_ != has_vt) {
        fail(concat("corner '", t, "' ", has_vt ? "has" : "lacks",
                    " a texture coordinate while the face corners before it (from line ", first_face_line_, ") ",
                    has_vt ? "lack" : "have", " one"));
      }
      any_vn_ = any_vn_ || c.vn >= 0;
      poly_.push_back(c);
    }
    for (size_t j = 1; j + 1 < poly_.size(); ++j) {  // fan triangulation
      corners_.push_back(poly_[0]);
      corners_.push_back(poly_[j]);
      corners_.push_back(poly_[j + 1]);
      triangle_lines_.push_back(line_);
    }
  }

  Mesh finish() {
    const int64_t nv = static_cast<int64_t>(positions_.size() / 3);
    const int64_t nt = static_cast<int64_t>(uvs_.size() / 2);
    const int64_t nn = static_cast<int64_t>(vn_.size() / 3);
    for (size_t k = 0; k < corners_.size(); ++k) {
      const Corner& c = corners_[k];
      auto check = [&](int64_t i, int64_t n, const char* what, const char* plural) {
        if (i >= n) {
          throw FormatError(concat(path_, ":", triangle_lines_[k / 3], ": ", what, " index ", i + 1,
                                   " out of range (the file has ", n, " ", plural, ")"));
        }
      };
      check(c.v, nv, "vertex", "vertices");
      if (c.vt >= 0) check(c.vt, nt, "texture coordinate", "texture coordinates");
      if (c.vn >= 0) check(c.vn, nn, "normal", "normals");
    }

    MeshBuilder b;
    b.vertices = std::move(positions_);
    if (!some_vertex_lacks_color_ && !colors_.empty()) b.colors = std::move(colors_);
    b.faces.resize(corners_.size());
    for (size_t k = 0; k < corners_.size(); ++k) b.faces[k] = corners_[k].v;

    if (faces_have_vt_ == 1) {
      b.uvs = std::move(uvs_);
      b.uv_faces.resize(corners_.size());
      for (size_t k = 0; k < corners_.size(); ++k) b.uv_faces[k] = corners_[k].vt;
      b.uv_per_corner = true;
    } else if (nt == nv && nt > 0) {
      b.uvs = std::move(uvs_);  // no face references: a per-vertex table by convention
    }

    if (any_vn_) {
      // Per-vertex normals from per-corner references: a vertex whose corners all name one normal takes it as
      // stored; a vertex with several (a hard edge) takes the normalised mean of its distinct normals, so the
      // result does not depend on how polygons were triangulated.
      b.normals.assign(static_cast<size_t>(nv) * 3, 0.0f);
      std::vector<int64_t> first(static_cast<size_t>(nv), -1);
      std::vector<char> mixed(static_cast<size_t>(nv), 0);
      bool any_mixed = false;
      for (const Corner& c : corners_) {
        if (c.vn < 0) continue;
        if (first[c.v] < 0) {
          first[c.v] = c.vn;
        } else if (first[c.v] != c.vn) {
          mixed[c.v] = 1;
          any_mixed = true;
        }
      }
      for (int64_t i = 0; i < nv; ++i) {
        if (first[i] >= 0 && !mixed[i]) std::copy_n(&vn_[3 * first[i]], 3, &b.normals[3 * i]);
      }
      if (any_mixed) {
        std::vector<std::pair<int64_t, int64_t>> pairs;  // (vertex, normal) of the vertices on hard edges
        for (const Corner& c : corners_) {
          if (c.vn >= 0 && mixed[c.v]) pairs.emplace_back(c.v, c.vn);
        }
        std::sort(pairs.begin(), pairs.end());
        pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
        for (const auto& [v, k] : pairs) {
          for (int d = 0; d < 3; ++d) b.normals[3 * v + d] += vn_[3 * k + d];
        }
        for (int64_t i = 0; i < nv; ++i) {
          if (!mixed[i]) continue;
          float* n = &b.normals[3 * i];
          const float len = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
          if (len > 0) std::for_each(n, n + 3, [len](float& x) { x /= len; });
        }
      }
    } else if (nn == nv && nn > 0) {
      b.normals = std::move(vn_);  // no face references: a per-vertex table by convention
    }
    return b.finish();
  }

  const std::string& path_;
  int line_ = 0;
  std::vector<std::string_view> tokens_;
  std::vector<float> positions_, colors_, uvs_, vn_;
  bool some_vertex_lacks_color_ = false;
  std::vector<Corner> corners_, poly_;
  std::vector<int> triangle_lines_;
  int faces_have_vt_ = -1;  // -1: no face yet
  int first_face_line_ = 0;
  bool any_vn_ = false;
};

}  // namespace

Mesh read_obj(const std::string& path) {
  const std::string data = read_file(path);
  return ObjParser(path).parse(data);
}

}  // namespace detail

void write_obj(const std::string& path, const Mesh& mesh, const std::string& texture_path) {
  const detail::MeshArrays a = detail::prepare_for_writing(mesh, path);
  PIXEL3DMM_CHECK(texture_path.find_first_of("\r\n") == std::string::npos, path,
                  ": texture path contains a line break");
  const int64_t V = a.num_vertices, F = a.num_faces;
  const float *v = a.v(), *n = a.n(), *c = a.c(), *t = a.t();
  const int64_t *f = a.f(), *tf = a.tf();

  std::string out = "# written by pixel3dmm\n";
  if (!texture_path.empty()) {
    const std::filesystem::path mtl = std::filesystem::path(path).replace_extension(".mtl");
    std::string m = "# written by pixel3dmm\nnewmtl material0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd ";
    m += texture_path + "\n";
    // The material first: the OBJ never names an .mtl that is not there.
    write_file_atomically(mtl.string(), m);
    out += "mtllib " + mtl.filename().string() + "\nusemtl material0\n";
  }
  out.reserve(out.size() + size_t(V) * 40 + size_t(F) * 30);
  for (int64_t i = 0; i < V; ++i) {
    out += 'v';
    for (int k = 0; k < 3; ++k) {
      out += ' ';
      detail::append_number(out, v[3 * i + k]);
    }
    if (c) {
      for (int k = 0; k < 3; ++k) {
        out += ' ';
        detail::append_number(out, std::clamp(c[3 * i + k], 0.0f, 1.0f));
      }
    }
    out += '\n';
  }
  const int64_t T = t ? a.uvs.size(0) : 0;
  for (int64_t i = 0; i < T; ++i) {
    out += "vt ";
    detail::append_number(out, t[2 * i]);
    out += ' ';
    detail::append_number(out, t[2 * i + 1]);
    out += '\n';
  }
  if (n) {
    for (int64_t i = 0; i < V; ++i) {
      out += "vn";
      for (int k = 0; k < 3; ++k) {
        out += ' ';
        detail::append_number(out, n[3 * i + k]);
      }
      out += '\n';
    }
  }
  for (int64_t i = 0; i < F; ++i) {
    out += 'f';
    for (int k = 0; k < 3; ++k) {
      const int64_t vi = f[3 * i + k] + 1;
      out += ' ';
      detail::append_number(out, vi);
      if (t) {
        out += '/';
        detail::append_number(out, a.uv_per_vertex ? vi : tf[3 * i + k] + 1);
      }
      if (n) {
        out += t ? "/" : "//";
        detail::append_number(out, vi);
      }
    }
    out += '\n';
  }
  write_file_atomically(path, out);
}

}  // namespace pixel3dmm::io
