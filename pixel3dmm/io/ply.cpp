// PLY (Stanford polygon format) reading and writing.
//
// Reading accepts ascii, binary_little_endian and binary_big_endian files with any scalar property types, list
// faces of any size (fan-triangulated), per-vertex normals (nx ny nz), colours (red green blue), UVs (s t / u v /
// texture_u texture_v) and per-face-corner UVs (MeshLab's `list ... texcoord`). Unknown properties and elements are
// skipped. Every declared count is checked against the bytes left in the file before anything is allocated.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/detail/mesh_common.h"

namespace pixel3dmm::io {

namespace detail {
namespace {

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

enum class PlyType : uint8_t { i8, u8, i16, u16, i32, u32, f32, f64 };

size_t type_size(PlyType t) {
  switch (t) {
    case PlyType::i8:
    case PlyType::u8: return 1;
    case PlyType::i16:
    case PlyType::u16: return 2;
    case PlyType::i32:
    case PlyType::u32:
    case PlyType::f32: return 4;
    case PlyType::f64: return 8;
  }
  return 0;
}

bool is_integral(PlyType t) { return t != PlyType::f32 && t != PlyType::f64; }

const char* type_name(PlyType t) {
  static const char* names[] = {"char", "uchar", "short", "ushort", "int", "uint", "float", "double"};
  return names[static_cast<int>(t)];
}

bool parse_type(std::string_view s, PlyType& t) {
  static const std::pair<std::string_view, PlyType> table[] = {
      {"char", PlyType::i8},     {"int8", PlyType::i8},     {"uchar", PlyType::u8},   {"uint8", PlyType::u8},
      {"short", PlyType::i16},   {"int16", PlyType::i16},   {"ushort", PlyType::u16}, {"uint16", PlyType::u16},
      {"int", PlyType::i32},     {"int32", PlyType::i32},   {"uint", PlyType::u32},   {"uint32", PlyType::u32},
      {"float", PlyType::f32},   {"float32", PlyType::f32}, {"double", PlyType::f64}, {"float64", PlyType::f64}};
  for (const auto& [name, type] : table) {
    if (s == name) {
      t = type;
      return true;
    }
  }
  return false;
}

/// Integer range of an integral PLY type.
void type_range(PlyType t, int64_t& lo, int64_t& hi) {
  switch (t) {
    case PlyType::i8: lo = -128, hi = 127; return;
    case PlyType::u8: lo = 0, hi = 255; return;
    case PlyType::i16: lo = -32768, hi = 32767; return;
    case PlyType::u16: lo = 0, hi = 65535; return;
    case PlyType::i32: lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max(); return;
    case PlyType::u32: lo = 0, hi = std::numeric_limits<uint32_t>::max(); return;
    default: lo = hi = 0;
  }
}

struct PlyProperty {
  std::string name;
  bool is_list = false;
  PlyType count_type = PlyType::u8;
  PlyType type = PlyType::f32;
};

struct PlyElement {
  std::string name;
  int64_t count = 0;
  int line = 0;
  std::vector<PlyProperty> props;
};

enum class PlyFormat { ascii, binary_le, binary_be };

struct PlyHeader {
  PlyFormat format = PlyFormat::ascii;
  std::vector<PlyElement> elements;
  size_t data_offset = 0;
};

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_int(std::string_view s, int64_t& v) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_real(std::string_view s, double& v) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

PlyHeader parse_header(const std::string& data, const std::string& path) {
  PlyHeader h;
  size_t pos = 0;
  int line_no = 0;
  bool have_format = false, have_end = false;
  auto where = [&] { return concat(path, ":", line_no); };
  while (pos < data.size()) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string::npos) eol = data.size();
    std::string_view line(data.data() + pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    ++line_no;
    const auto tok = split_ws(line);
    if (line_no == 1) {
      PIXEL3DMM_CHECK_FORMAT(tok.size() == 1 && tok[0] == "ply", path,
                             "not a PLY file (the first line must be 'ply')");
      continue;
    }
    if (tok.empty() || tok[0] == "comment" || tok[0] == "obj_info") continue;
    if (tok[0] == "format") {
      PIXEL3DMM_CHECK_FORMAT(tok.size() == 3, where(), "malformed format line '", line, "'");
      if (tok[1] == "ascii") {
        h.format = PlyFormat::ascii;
      } else if (tok[1] == "binary_little_endian") {
        h.format = PlyFormat::binary_le;
      } else if (tok[1] == "binary_big_endian") {
        h.format = PlyFormat::binary_be;
      } else {
        throw FormatError(concat(where(), ": unknown PLY format '", tok[1],
                                 "' (expected ascii, binary_little_endian or binary_big_endian)"));
      }
      PIXEL3DMM_CHECK_FORMAT(tok[2] == "1.0", where(), "unsupported PLY version '", tok[2], "' (expected 1.0)");
      have_format = true;
    } else if (tok[0] == "element") {
      PIXEL3DMM_CHECK_FORMAT(tok.size() == 3, where(), "malformed element line '", line, "'");
      PlyElement e;
      e.name = std::string(tok[1]);
      e.line = line_no;
      PIXEL3DMM_CHECK_FORMAT(parse_int(tok[2], e.count) && e.count >= 0, where(), "element '", e.name,
                             "' has an invalid count '", tok[2], "'");
      h.elements.push_back(std::move(e));
    } else if (tok[0] == "property") {
      PIXEL3DMM_CHECK_FORMAT(!h.elements.empty(), where(), "property before any element");
      PlyProperty p;
      if (tok.size() == 5 && tok[1] == "list") {
        p.is_list = true;
        PIXEL3DMM_CHECK_FORMAT(parse_type(tok[2], p.count_type), where(), "unknown type '", tok[2], "'");
        PIXEL3DMM_CHECK_FORMAT(is_integral(p.count_type), where(), "list count type must be an integer type, found '",
                               tok[2], "'");
        PIXEL3DMM_CHECK_FORMAT(parse_type(tok[3], p.type), where(), "unknown type '", tok[3], "'");
        p.name = std::string(tok[4]);
      } else if (tok.size() == 3 && tok[1] != "list") {
        PIXEL3DMM_CHECK_FORMAT(parse_type(tok[1], p.type), where(), "unknown type '", tok[1], "'");
        p.name = std::string(tok[2]);
      } else {
        throw FormatError(concat(where(), ": malformed property line '", line, "'"));
      }
      h.elements.back().props.push_back(std::move(p));
    } else if (tok[0] == "end_header") {
      have_end = true;
      break;
    } else {
      throw FormatError(concat(where(), ": unexpected header line '", line, "'"));
    }
  }
  PIXEL3DMM_CHECK_FORMAT(line_no > 0, path, "empty file (not a PLY file)");
  PIXEL3DMM_CHECK_FORMAT(have_end, path, "no 'end_header' line (truncated or not a PLY file)");
  PIXEL3DMM_CHECK_FORMAT(have_format, path, "no 'format' line in the header");
  h.data_offset = std::min(pos, data.size());
  return h;
}

/// Refuses counts that the bytes after the header cannot hold, before anything is allocated.
void check_capacity(const PlyHeader& h, size_t data_bytes, const std::string& path) {
  const bool ascii = h.format == PlyFormat::ascii;
  // ASCII: every value takes at least one character plus a separator; binary: its type size.
  uint64_t left = ascii ? (uint64_t(data_bytes) + 1) / 2 : data_bytes;
  for (const auto& e : h.elements) {
    uint64_t per_entry = 0;
    for (const auto& p : e.props) per_entry += ascii ? 1 : type_size(p.is_list ? p.count_type : p.type);
    if (per_entry == 0 || e.count == 0) continue;
    const uint64_t count = static_cast<uint64_t>(e.count);
    if (count > left / per_entry) {
      throw FormatError(concat(path, ":", e.line, ": element '", e.name, "' declares ", e.count, " entries of at least ",
                               per_entry, ascii ? " values" : " bytes", " each, but the file holds only ",
                               data_bytes, " bytes of data after the header"));
    }
    left -= count * per_entry;
  }
}

/// Binary body reader: bounds-checked reads of scalar values in the file's byte order.
class BinarySource {
 public:
  BinarySource(const std::string& data, size_t offset, bool big_endian)
      : begin_(reinterpret_cast<const unsigned char*>(data.data())),
        p_(begin_ + offset),
        end_(begin_ + data.size()),
        swap_(big_endian == kHostLittleEndian) {}

  bool has(uint64_t n) const { return n <= static_cast<uint64_t>(end_ - p_); }
  uint64_t remaining() const { return static_cast<uint64_t>(end_ - p_); }
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }

  /// Precondition: has(type_size(t)).
  template <typename R>
  R read(PlyType t) {
    switch (t) {
      case PlyType::i8: return static_cast<R>(get<int8_t>());
      case PlyType::u8: return static_cast<R>(get<uint8_t>());
      case PlyType::i16: return static_cast<R>(get<int16_t>());
      case PlyType::u16: return static_cast<R>(get<uint16_t>());
      case PlyType::i32: return static_cast<R>(get<int32_t>());
      case PlyType::u32: return static_cast<R>(get<uint32_t>());
      case PlyType::f32: return static_cast<R>(get<float>());
      case PlyType::f64: return static_cast<R>(get<double>());
    }
    return R();
  }
  void skip(uint64_t n) { p_ += n; }

 private:
  template <typename T>
  T get() {
    unsigned char b[sizeof(T)];
    std::memcpy(b, p_, sizeof(T));
    if (swap_) std::reverse(b, b + sizeof(T));
    p_ += sizeof(T);
    T v;
    std::memcpy(&v, b, sizeof(T));
    return v;
  }
  const unsigned char* begin_;
  const unsigned char* p_;
  const unsigned char* end_;
  bool swap_;
};

/// ASCII body reader: whitespace-separated tokens with line numbers for messages.
class AsciiSource {
 public:
  AsciiSource(const std::string& data, size_t offset, int first_line)
      : data_(data), pos_(offset), line_(first_line) {}

  /// Next token, or an empty view at the end of the file.
  std::string_view next() {
    while (pos_ < data_.size()) {
      const char c = data_[pos_];
      if (!is_space(c)) break;
      line_ += c == '\n';
      ++pos_;
    }
    const size_t start = pos_;
    while (pos_ < data_.size() && !is_space(data_[pos_])) ++pos_;
    return std::string_view(data_.data() + start, pos_ - start);
  }
  int line() const { return line_; }
  uint64_t remaining() const { return data_.size() - pos_; }

 private:
  static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
  const std::string& data_;
  size_t pos_;
  int line_;
};

/// What a vertex property feeds.
enum class Slot : uint8_t { none, x, y, z, nx, ny, nz, red, green, blue, s, t };

Slot vertex_slot(const std::string& n) {
  if (n == "x") return Slot::x;
  if (n == "y") return Slot::y;
  if (n == "z") return Slot::z;
  if (n == "nx") return Slot::nx;
  if (n == "ny") return Slot::ny;
  if (n == "nz") return Slot::nz;
  if (n == "red" || n == "r" || n == "diffuse_red") return Slot::red;
  if (n == "green" || n == "g" || n == "diffuse_green") return Slot::green;
  if (n == "blue" || n == "b" || n == "diffuse_blue") return Slot::blue;
  if (n == "s" || n == "u" || n == "texture_u" || n == "texture_s") return Slot::s;
  if (n == "t" || n == "v" || n == "texture_v" || n == "texture_t") return Slot::t;
  return Slot::none;
}

/// Colour scale by stored type: 8-bit /255, 16-bit /65535, floats as stored.
float color_scale(PlyType t) {
  if (t == PlyType::f32 || t == PlyType::f64) return 1.0f;
  if (t == PlyType::u16 || t == PlyType::i16) return 1.0f / 65535.0f;
  return 1.0f / 255.0f;
}

/// Reads the body with either source. `Src` provides the value access; the rest is format independent.
class PlyBodyReader {
 public:
  PlyBodyReader(const std::string& path, const std::string& data, const PlyHeader& h, int header_lines)
      : path_(path), data_(data), h_(h), header_lines_(header_lines) {}

  Mesh read() {
    const PlyElement* vertex = nullptr;
    for (const auto& e : h_.elements) {
      if (e.name == "vertex") {
        PIXEL3DMM_CHECK_FORMAT(vertex == nullptr, path_, "more than one 'vertex' element");
        vertex = &e;
      }
    }
    PIXEL3DMM_CHECK_FORMAT(vertex != nullptr, path_, "no 'vertex' element in the header");
    num_vertices_ = vertex->count;
    plan_vertex(*vertex);

    if (h_.format == PlyFormat::ascii) {
      AsciiSource src(data_, h_.data_offset, header_lines_ + 1);
      for (const auto& e : h_.elements) read_element(src, e);
    } else {
      BinarySource src(data_, h_.data_offset, h_.format == PlyFormat::binary_be);
      for (const auto& e : h_.elements) read_element(src, e);
    }
    check_finite_values();
    if (!have_uv_ && !b_.uvs.empty()) b_.uvs.clear();
    return b_.finish();
  }

 private:
  void plan_vertex(const PlyElement& e) {
    slots_.resize(e.props.size());
    bool seen[12] = {};
    for (size_t i = 0; i < e.props.size(); ++i) {
      const auto& p = e.props[i];
      slots_[i] = p.is_list ? Slot::none : vertex_slot(p.name);
      if (seen[static_cast<int>(slots_[i])]) slots_[i] = Slot::none;  // first of synonyms wins
      seen[static_cast<int>(slots_[i])] = true;
    }
    auto has = [&](Slot s) { return seen[static_cast<int>(s)]; };
    PIXEL3DMM_CHECK_FORMAT(has(Slot::x) && has(Slot::y) && has(Slot::z), path_, ":", e.line,
                           ": element 'vertex' lacks one of the properties x, y, z");
    have_normals_ = has(Slot::nx) && has(Slot::ny) && has(Slot::nz);
    have_colors_ = has(Slot::red) && has(Slot::green) && has(Slot::blue);
    have_uv_ = has(Slot::s) && has(Slot::t);
    // Partial groups (e.g. only nx) are ignored rather than half-filled.
    for (auto& s : slots_) {
      if ((s == Slot::nx || s == Slot::ny || s == Slot::nz) && !have_normals_) s = Slot::none;
      if ((s == Slot::red || s == Slot::green || s == Slot::blue) && !have_colors_) s = Slot::none;
      if ((s == Slot::s || s == Slot::t) && !have_uv_) s = Slot::none;
    }
    const size_t V = static_cast<size_t>(e.count);  // bounded by check_capacity
    b_.vertices.assign(V * 3, 0.0f);
    if (have_normals_) b_.normals.assign(V * 3, 0.0f);
    if (have_colors_) b_.colors.assign(V * 3, 0.0f);
    if (have_uv_) b_.uvs.assign(V * 2, 0.0f);
  }

  // --- value access, overloaded per source ---
  std::string where(const AsciiSource& src, const PlyElement& e, int64_t i, const PlyProperty& p) const {
    return concat(path_, ":", src.line(), ": element '", e.name, "' entry ", i, " property '", p.name, "'");
  }
  std::string where(const BinarySource& src, const PlyElement& e, int64_t i, const PlyProperty& p) const {
    return concat(path_, ": element '", e.name, "' entry ", i, " of ", e.count, " property '", p.name,
                  "' (byte offset ", src.offset(), ")");
  }

  template <typename R>
  R value(AsciiSource& src, PlyType t, const PlyElement& e, int64_t i, const PlyProperty& p) {
    const std::string_view tok = src.next();
    if (tok.empty()) throw FormatError(where(src, e, i, p) + ": unexpected end of file");
    if (is_integral(t)) {
      int64_t v, lo, hi;
      if (!parse_int(tok, v)) {
        throw FormatError(concat(where(src, e, i, p), ": expected an integer (", type_name(t), "), found '", tok, "'"));
      }
      type_range(t, lo, hi);
      if (v < lo || v > hi) {
        throw FormatError(concat(where(src, e, i, p), ": value ", v, " out of range for ", type_name(t)));
      }
      return static_cast<R>(v);
    }
    double v;
    if (!parse_real(tok, v)) {
      throw FormatError(concat(where(src, e, i, p), ": expected a number (", type_name(t), "), found '", tok, "'"));
    }
    return static_cast<R>(v);
  }
  template <typename R>
  R value(BinarySource& src, PlyType t, const PlyElement& e, int64_t i, const PlyProperty& p) {
    if (!src.has(type_size(t))) throw truncated(src, e, i, p);
    return src.read<R>(t);
  }
  FormatError truncated(const BinarySource& src, const PlyElement& e, int64_t i, const PlyProperty& p) const {
    return FormatError(concat(where(src, e, i, p), ": truncated binary data (the file ends at byte ",
                              src.offset() + src.remaining(), ")"));
  }

  /// Reads a list length and refuses one longer than the rest of the file could hold.
  template <typename Src>
  int64_t list_length(Src& src, const PlyElement& e, int64_t i, const PlyProperty& p) {
    const int64_t n = value<int64_t>(src, p.count_type, e, i, p);
    if (n < 0) throw FormatError(concat(where(src, e, i, p), ": negative list length ", n));
    const uint64_t min_bytes = std::is_same_v<Src, AsciiSource> ? 1 : type_size(p.type);
    if (static_cast<uint64_t>(n) > src.remaining() / min_bytes + 1) {
      if constexpr (std::is_same_v<Src, BinarySource>) throw truncated(src, e, i, p);
      throw FormatError(concat(where(src, e, i, p), ": list of ", n, " items is longer than the rest of the file"));
    }
    return n;
  }

  void skip_values(AsciiSource& src, PlyType t, int64_t n, const PlyElement& e, int64_t i, const PlyProperty& p) {
    for (int64_t k = 0; k < n; ++k) value<double>(src, t, e, i, p);
  }
  void skip_values(BinarySource& src, PlyType t, int64_t n, const PlyElement& e, int64_t i, const PlyProperty& p) {
    const uint64_t bytes = static_cast<uint64_t>(n) * type_size(t);
    if (!src.has(bytes)) throw truncated(src, e, i, p);
    src.skip(bytes);
  }

  template <typename Src>
  void read_element(Src& src, const PlyElement& e) {
    if (e.props.empty()) return;
    if (e.name == "vertex") return read_vertices(src, e);
    if (e.name == "face") return read_faces(src, e);
    for (int64_t i = 0; i < e.count; ++i) {
      for (const auto& p : e.props) {
        if (p.is_list) {
          skip_values(src, p.type, list_length(src, e, i, p), e, i, p);
        } else {
          skip_values(src, p.type, 1, e, i, p);
        }
      }
    }
  }

  template <typename Src>
  void read_vertices(Src& src, const PlyElement& e) {
    float* v = b_.vertices.data();
    float* n = b_.normals.data();
    float* c = b_.colors.data();
    float* t = b_.uvs.data();
    std::vector<float> scale(e.props.size());
    for (size_t k = 0; k < e.props.size(); ++k) scale[k] = color_scale(e.props[k].type);
    for (int64_t i = 0; i < e.count; ++i) {
      for (size_t k = 0; k < e.props.size(); ++k) {
        const auto& p = e.props[k];
        if (p.is_list) {
          skip_values(src, p.type, list_length(src, e, i, p), e, i, p);
          continue;
        }
        const Slot s = slots_[k];
        if (s == Slot::none) {
          skip_values(src, p.type, 1, e, i, p);
          continue;
        }
        const float x = value<float>(src, p.type, e, i, p);
        switch (s) {
          case Slot::x: v[3 * i] = x; break;
          case Slot::y: v[3 * i + 1] = x; break;
          case Slot::z: v[3 * i + 2] = x; break;
          case Slot::nx: n[3 * i] = x; break;
          case Slot::ny: n[3 * i + 1] = x; break;
          case Slot::nz: n[3 * i + 2] = x; break;
          case Slot::red: c[3 * i] = x * scale[k]; break;
          case Slot::green: c[3 * i + 1] = x * scale[k]; break;
          case Slot::blue: c[3 * i + 2] = x * scale[k]; break;
          case Slot::s: t[2 * i] = x; break;
          case Slot::t: t[2 * i + 1] = x; break;
          case Slot::none: break;
        }
      }
    }
  }

  template <typename Src>
  void read_faces(Src& src, const PlyElement& e) {
    int index_prop = -1, texcoord_prop = -1;
    for (size_t k = 0; k < e.props.size(); ++k) {
      const auto& p = e.props[k];
      if (p.is_list && index_prop < 0 && (p.name == "vertex_indices" || p.name == "vertex_index")) {
        index_prop = static_cast<int>(k);
      } else if (p.is_list && texcoord_prop < 0 && p.name == "texcoord") {
        texcoord_prop = static_cast<int>(k);
      }
    }
    PIXEL3DMM_CHECK_FORMAT(index_prop >= 0, path_, ":", e.line,
                           ": element 'face' has no list property 'vertex_indices'");
    PIXEL3DMM_CHECK_FORMAT(is_integral(e.props[index_prop].type), path_, ":", e.line,
                           ": 'vertex_indices' must hold integers, found ", type_name(e.props[index_prop].type));
    // Reserve no more than the rest of the file can hold: a triangle takes at least "3 a b c\n" (8 characters) or
    // its binary count and three indices.
    const PlyProperty& ip = e.props[index_prop];
    const uint64_t min_face = std::is_same_v<Src, AsciiSource> ? 8 : type_size(ip.count_type) + 3 * type_size(ip.type);
    const size_t expected = static_cast<size_t>(std::min<uint64_t>(e.count, src.remaining() / min_face));
    b_.faces.reserve(expected * 3);
    if (texcoord_prop >= 0) b_.corner_uvs.reserve(expected * 6);
    std::vector<int64_t> poly;
    std::vector<float> tex;
    for (int64_t i = 0; i < e.count; ++i) {
      poly.clear();
      tex.clear();
      for (size_t k = 0; k < e.props.size(); ++k) {
        const auto& p = e.props[k];
        if (static_cast<int>(k) == index_prop) {
          const int64_t n = list_length(src, e, i, p);
          for (int64_t j = 0; j < n; ++j) {
            const int64_t idx = value<int64_t>(src, p.type, e, i, p);
            if (idx < 0 || idx >= num_vertices_) {
              throw FormatError(concat(where(src, e, i, p), ": vertex index ", idx, " out of range (the file has ",
                                       num_vertices_, " vertices)"));
            }
            poly.push_back(idx);
          }
          if (n < 3) throw FormatError(concat(where(src, e, i, p), ": face with ", n, " vertices (at least 3 needed)"));
        } else if (static_cast<int>(k) == texcoord_prop) {
          const int64_t n = list_length(src, e, i, p);
          for (int64_t j = 0; j < n; ++j) tex.push_back(value<float>(src, p.type, e, i, p));
        } else if (p.is_list) {
          skip_values(src, p.type, list_length(src, e, i, p), e, i, p);
        } else {
          skip_values(src, p.type, 1, e, i, p);
        }
      }
      if (texcoord_prop >= 0 && tex.size() != 2 * poly.size()) {
        throw FormatError(concat(path_, ": element 'face' entry ", i, ": 'texcoord' holds ", tex.size(),
                                 " values for a face with ", poly.size(), " vertices (expected ", 2 * poly.size(),
                                 ")"));
      }
      for (size_t j = 1; j + 1 < poly.size(); ++j) {  // fan triangulation
        for (size_t corner : {size_t(0), j, j + 1}) {
          b_.faces.push_back(poly[corner]);
          if (texcoord_prop >= 0) {
            b_.corner_uvs.push_back(tex[2 * corner]);
            b_.corner_uvs.push_back(tex[2 * corner + 1]);
          }
        }
      }
    }
  }

  void check_finite_values() const {
    auto check = [&](const std::vector<float>& a, int cols, const char* what) {
      for (size_t k = 0; k < a.size(); ++k) {
        if (!std::isfinite(a[k])) {
          throw FormatError(concat(path_, ": ", what, " of vertex ", k / cols, " is not finite (", a[k], ")"));
        }
      }
    };
    check(b_.vertices, 3, "position");
    check(b_.normals, 3, "normal");
    check(b_.colors, 3, "colour");
    if (have_uv_) check(b_.uvs, 2, "UV");
    for (size_t k = 0; k < b_.corner_uvs.size(); ++k) {
      if (!std::isfinite(b_.corner_uvs[k])) {
        throw FormatError(concat(path_, ": texcoord of face corner ", k / 2, " is not finite (", b_.corner_uvs[k],
                                 ")"));
      }
    }
  }

  const std::string& path_;
  const std::string& data_;
  const PlyHeader& h_;
  int header_lines_;
  int64_t num_vertices_ = 0;
  std::vector<Slot> slots_;
  bool have_normals_ = false, have_colors_ = false, have_uv_ = false;
  MeshBuilder b_;
};

int count_lines(const std::string& data, size_t end) {
  return static_cast<int>(std::count(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
}

// --- writing ---
template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  if (!kHostLittleEndian) std::reverse(b, b + sizeof(T));
  out.append(b, sizeof(T));
}

uint8_t to_byte(float c) { return static_cast<uint8_t>(std::lround(std::clamp(c, 0.0f, 1.0f) * 255.0f)); }

}  // namespace

Mesh read_ply(const std::string& path) {
  const std::string data = read_file(path);
  const PlyHeader h = parse_header(data, path);
  check_capacity(h, data.size() - h.data_offset, path);
  return PlyBodyReader(path, data, h, count_lines(data, h.data_offset)).read();
}

}  // namespace detail

void write_ply(const std::string& path, const Mesh& mesh, bool binary) {
  const detail::MeshArrays a = detail::prepare_for_writing(mesh, path);
  PIXEL3DMM_CHECK(a.num_vertices <= std::numeric_limits<int32_t>::max(), path, ": ", a.num_vertices,
                  " vertices do not fit PLY's int vertex indices");
  const int64_t V = a.num_vertices, F = a.num_faces;
  const bool uv_vertex = a.uvs.defined() && a.uv_per_vertex;
  const bool uv_corner = a.uvs.defined() && !a.uv_per_vertex;

  std::string out;
  out += "ply\nformat ";
  out += binary ? "binary_little_endian" : "ascii";
  out += " 1.0\ncomment written by pixel3dmm\nelement vertex " + std::to_string(V) +
         "\nproperty float x\nproperty float y\nproperty float z\n";
  if (a.n()) out += "property float nx\nproperty float ny\nproperty float nz\n";
  if (a.c()) out += "property uchar red\nproperty uchar green\nproperty uchar blue\n";
  if (uv_vertex) out += "property float s\nproperty float t\n";
  out += "element face " + std::to_string(F) + "\nproperty list uchar int vertex_indices\n";
  if (uv_corner) out += "property list uchar float texcoord\n";
  out += "end_header\n";

  const float *v = a.v(), *n = a.n(), *c = a.c(), *t = a.t();
  const int64_t *f = a.f(), *tf = a.tf();
  const size_t vertex_bytes = 12 + (n ? 12 : 0) + (c ? 3 : 0) + (uv_vertex ? 8 : 0);
  const size_t face_bytes = 13 + (uv_corner ? 25 : 0);
  out.reserve(out.size() + (binary ? 1 : 3) * (size_t(V) * vertex_bytes + size_t(F) * face_bytes));
  if (binary) {
    for (int64_t i = 0; i < V; ++i) {
      for (int k = 0; k < 3; ++k) detail::put(out, v[3 * i + k]);
      if (n) for (int k = 0; k < 3; ++k) detail::put(out, n[3 * i + k]);
      if (c) for (int k = 0; k < 3; ++k) detail::put(out, detail::to_byte(c[3 * i + k]));
      if (uv_vertex) for (int k = 0; k < 2; ++k) detail::put(out, t[2 * i + k]);
    }
    for (int64_t i = 0; i < F; ++i) {
      detail::put(out, uint8_t(3));
      for (int k = 0; k < 3; ++k) detail::put(out, static_cast<int32_t>(f[3 * i + k]));
      if (uv_corner) {
        detail::put(out, uint8_t(6));
        for (int k = 0; k < 3; ++k) {
          detail::put(out, t[2 * tf[3 * i + k]]);
          detail::put(out, t[2 * tf[3 * i + k] + 1]);
        }
      }
    }
  } else {
    auto sep = [&](float x) {
      detail::append_number(out, x);
      out += ' ';
    };
    for (int64_t i = 0; i < V; ++i) {
      for (int k = 0; k < 3; ++k) sep(v[3 * i + k]);
      if (n) for (int k = 0; k < 3; ++k) sep(n[3 * i + k]);
      if (c) {
        for (int k = 0; k < 3; ++k) {
          detail::append_number(out, int64_t(detail::to_byte(c[3 * i + k])));
          out += ' ';
        }
      }
      if (uv_vertex) for (int k = 0; k < 2; ++k) sep(t[2 * i + k]);
      out.back() = '\n';
    }
    for (int64_t i = 0; i < F; ++i) {
      out += '3';
      for (int k = 0; k < 3; ++k) {
        out += ' ';
        detail::append_number(out, f[3 * i + k]);
      }
      if (uv_corner) {
        out += " 6";
        for (int k = 0; k < 3; ++k) {
          out += ' ';
          detail::append_number(out, t[2 * tf[3 * i + k]]);
          out += ' ';
          detail::append_number(out, t[2 * tf[3 * i + k] + 1]);
        }
      }
      out += '\n';
    }
  }
  write_file_atomically(path, out);
}

}  // namespace pixel3dmm::io
