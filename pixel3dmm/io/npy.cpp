#include "pixel3dmm/io/npy.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <tuple>
#include <vector>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/detail/byte_source.h"
#include "pixel3dmm/io/detail/tensor_bytes.h"
#include "pixel3dmm/io/detail/zip.h"

namespace pixel3dmm::io {
namespace {

using detail::ByteSource;
using pixel3dmm::detail::concat;

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::uint64_t kMagicSize = 6;
// Plain arrays need well under 1 KiB of header; numpy itself refuses more than 10 000 bytes by default.
constexpr std::uint64_t kMaxHeaderBytes = 1 << 20;
constexpr int kMaxLiteralDepth = 16;

// --- the header: a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } ---

struct PyValue {
  enum Kind { kStr, kInt, kBool, kNone, kTuple, kList, kDict } kind = kNone;
  std::string str;
  int64_t integer = 0;
  bool boolean = false;
  std::vector<PyValue> items;     // tuple, list, dict values
  std::vector<std::string> keys;  // dict keys
};

std::string repr(const PyValue& v) {
  switch (v.kind) {
    case PyValue::kStr:
      return "'" + v.str + "'";
    case PyValue::kInt:
      return std::to_string(v.integer);
    case PyValue::kBool:
      return v.boolean ? "True" : "False";
    case PyValue::kNone:
      return "None";
    case PyValue::kDict: {
      std::string s = "{";
      for (size_t i = 0; i < v.items.size(); ++i) s += (i ? ", '" : "'") + v.keys[i] + "': " + repr(v.items[i]);
      return s + "}";
    }
    default: {
      std::string s = v.kind == PyValue::kList ? "[" : "(";
      for (size_t i = 0; i < v.items.size(); ++i) s += (i ? ", " : "") + repr(v.items[i]);
      if (v.kind == PyValue::kTuple && v.items.size() == 1) s += ",";
      return s + (v.kind == PyValue::kList ? "]" : ")");
    }
  }
}

// Recursive descent over the literals numpy writes (and Python 2 era files: 3L). Nesting is bounded so a
// crafted header cannot exhaust the stack.
class LiteralParser {
 public:
  LiteralParser(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  PyValue parse() {
    PyValue v = value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(concat(file_, ": header is not a valid Python literal, ", what, " at character ", pos_, " of '",
                             text_.substr(0, 200), "'"));
  }
  void skip_space() {
    while (pos_ < text_.size() && std::strchr(" \t\r\n", text_[pos_]) && text_[pos_] != '\0') ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  PyValue value(int depth) {
    if (depth > kMaxLiteralDepth) fail("nesting too deep");
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end");
    const char c = text_[pos_];
    PyValue v;
    if (c == '\'' || c == '"') {
      v.kind = PyValue::kStr;
      v.str = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = PyValue::kInt;
      v.integer = integer();
    } else if (c == '(' || c == '[') {
      v.kind = c == '(' ? PyValue::kTuple : PyValue::kList;
      ++pos_;
      const char close = c == '(' ? ')' : ']';
      while (!eat(close)) {
        v.items.push_back(value(depth + 1));
        if (!eat(',')) {
          if (!eat(close)) fail(concat("expected ',' or '", close, "'"));
          break;
        }
      }
    } else if (c == '{') {
      v.kind = PyValue::kDict;
      ++pos_;
      while (!eat('}')) {
        skip_space();
        if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a string key");
        v.keys.push_back(string());
        if (!eat(':')) fail("expected ':'");
        v.items.push_back(value(depth + 1));
        if (!eat(',')) {
          if (!eat('}')) fail("expected ',' or '}'");
          break;
        }
      }
    } else {
      for (const auto& [word, kind, b] :
           {std::tuple{"True", PyValue::kBool, true}, std::tuple{"False", PyValue::kBool, false},
            std::tuple{"None", PyValue::kNone, false}}) {
        if (text_.substr(pos_, std::strlen(word)) == word) {
          pos_ += std::strlen(word);
          v.kind = kind;
          v.boolean = b;
          return v;
        }
      }
      fail("unexpected character");
    }
    return v;
  }

  std::string string() {
    const char quote = text_[pos_++];
    std::string s;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;  // escapes only matter in field names we reject
      s += text_[pos_++];
    }
    if (pos_ >= text_.size()) fail("unterminated string");
    ++pos_;
    return s;
  }

  int64_t integer() {
    const bool negative = text_[pos_] == '-';
    if (negative) ++pos_;
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') fail("expected digits");
    int64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, text_[pos_] - '0', &v))
        fail("integer does not fit in 64 bits");
      ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2 long
    return negative ? -v : v;
  }

  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
};

// --- dtypes ---

struct NpyType {
  const char* descr;         // as written (little-endian form)
  torch::ScalarType stored;  // the bytes in the file, as torch reads them
  torch::ScalarType result;  // what the reader returns (bools are normalised, u2/u4 widened)
};

constexpr NpyType kTypes[] = {
    {"f8", torch::kDouble, torch::kDouble}, {"f4", torch::kFloat, torch::kFloat}, {"f2", torch::kHalf, torch::kHalf},
    {"i8", torch::kLong, torch::kLong},     {"i4", torch::kInt, torch::kInt},     {"i2", torch::kShort, torch::kShort},
    {"i1", torch::kChar, torch::kChar},     {"u1", torch::kByte, torch::kByte},   {"b1", torch::kByte, torch::kBool},
    {"u2", torch::kShort, torch::kInt},     {"u4", torch::kInt, torch::kLong},
};
constexpr const char* kReadableDescrs = "'<f8' '<f4' '<f2' '<i8' '<i4' '<i2' '|i1' '|u1' '|b1' '<u2' '<u4' (or '>')";

struct Descr {
  const NpyType* type;
  bool swap;  // big-endian data
};

Descr parse_descr(const std::string& file, const PyValue& v) {
  PIXEL3DMM_CHECK_FORMAT(v.kind == PyValue::kStr, file, "structured dtypes are not supported, expected a plain descr ",
                         "such as '<f4', found descr ", repr(v));
  const std::string& d = v.str;
  const char order = d.empty() ? '?' : d[0];
  const std::string code = std::strchr("<>|=", order) ? d.substr(1) : d;
  PIXEL3DMM_CHECK_FORMAT(code.empty() || code[0] != 'O', file,
                         "object arrays are not supported (they hold pickled Python objects), found descr '", d, "'");
  PIXEL3DMM_CHECK_FORMAT(code != "u8", file, "uint64 has no lossless torch dtype, expected one of ", kReadableDescrs,
                         ", found descr '", d, "'");
  const NpyType* type = nullptr;
  for (const auto& t : kTypes)
    if (code == t.descr) type = &t;
  PIXEL3DMM_CHECK_FORMAT(type, file, "unsupported dtype, expected one of ", kReadableDescrs, ", found descr '", d, "'");
  const int size = code[1] - '0';
  // '|' (no byte order) is only meaningful for single bytes; numpy never writes it for wider types.
  PIXEL3DMM_CHECK_FORMAT(size == 1 || order != '|', file, "descr '", d, "' lacks a byte order");
  return {type, size > 1 && order == '>'};
}

void byteswap(torch::Tensor& t) {
  const int64_t n = t.numel();
  switch (t.element_size()) {
    case 2: {
      auto* p = static_cast<std::uint16_t*>(t.data_ptr());
      for (int64_t i = 0; i < n; ++i) p[i] = __builtin_bswap16(p[i]);
      break;
    }
    case 4: {
      auto* p = static_cast<std::uint32_t*>(t.data_ptr());
      for (int64_t i = 0; i < n; ++i) p[i] = __builtin_bswap32(p[i]);
      break;
    }
    case 8: {
      auto* p = static_cast<std::uint64_t*>(t.data_ptr());
      for (int64_t i = 0; i < n; ++i) p[i] = __builtin_bswap64(p[i]);
      break;
    }
    default:
      break;
  }
}

const PyValue& dict_get(const std::string& file, const PyValue& dict, const char* key) {
  for (size_t i = 0; i < dict.keys.size(); ++i)
    if (dict.keys[i] == key) return dict.items[i];
  throw FormatError(
      concat(file, ": header lacks the key '", key, "', expected descr, fortran_order and shape, found ", repr(dict)));
}

torch::Tensor read_npy_from(const ByteSource& src) {
  const std::string& file = src.name();
  PIXEL3DMM_CHECK_FORMAT(src.size() >= 10, file, "file too short for a .npy header, expected at least 10 bytes, found ",
                         src.size());
  unsigned char pre[12] = {};
  src.read(0, std::min<std::uint64_t>(src.size(), 12), pre);
  if (std::memcmp(pre, kMagic, kMagicSize) != 0) {
    std::string found;
    for (std::uint64_t i = 0; i < kMagicSize; ++i) {
      char buf[8];
      std::snprintf(buf, sizeof buf, pre[i] >= 0x20 && pre[i] < 0x7f ? "%c" : "\\x%02x", pre[i]);
      found += buf;
    }
    throw FormatError(concat(file, ": not a .npy file (bad magic), expected \\x93NUMPY, found ", found));
  }
  const int major = pre[6], minor = pre[7];
  PIXEL3DMM_CHECK_FORMAT((major >= 1 && major <= 3 && minor == 0), file,
                         "unsupported .npy format version, expected 1.0, 2.0 or 3.0, found ", major, ".", minor);
  const std::uint64_t prefix = major == 1 ? 10 : 12;
  PIXEL3DMM_CHECK_FORMAT(src.size() >= prefix, file, "file too short for a version ", major, " header length");
  const std::uint64_t header_len = detail::load_le(pre + 8, major == 1 ? 2 : 4);
  PIXEL3DMM_CHECK_FORMAT(header_len <= src.size() - prefix, file,
                         "header length runs past the end of the file, expected at most ", src.size() - prefix,
                         " bytes, found ", header_len);
  PIXEL3DMM_CHECK_FORMAT(header_len <= kMaxHeaderBytes, file,
                         "header is larger than any plain array needs, expected at most ", kMaxHeaderBytes,
                         " bytes, found ", header_len);

  const std::string text = src.read_string(prefix, header_len);
  const PyValue header = LiteralParser(text, file).parse();
  PIXEL3DMM_CHECK_FORMAT(header.kind == PyValue::kDict, file, "header must be a dict, found ", repr(header));
  PIXEL3DMM_CHECK_FORMAT(header.keys.size() == 3, file,
                         "header must hold exactly descr, fortran_order and shape, found ", repr(header));
  const Descr descr = parse_descr(file, dict_get(file, header, "descr"));
  const PyValue& fortran = dict_get(file, header, "fortran_order");
  PIXEL3DMM_CHECK_FORMAT(fortran.kind == PyValue::kBool, file, "fortran_order must be True or False, found ",
                         repr(fortran));
  const PyValue& shape_v = dict_get(file, header, "shape");
  std::vector<int64_t> shape;
  const bool shape_ok = shape_v.kind == PyValue::kTuple &&
                        std::all_of(shape_v.items.begin(), shape_v.items.end(),
                                    [](const PyValue& d) { return d.kind == PyValue::kInt && d.integer >= 0; });
  PIXEL3DMM_CHECK_FORMAT(shape_ok, file, "shape must be a tuple of non-negative integers, found ", repr(shape_v));
  for (const PyValue& d : shape_v.items) shape.push_back(d.integer);

  // Sizes are checked against the bytes actually there before anything is allocated.
  const std::string descr_text = concat("'", dict_get(file, header, "descr").str, "'");
  const auto nbytes = detail::checked_nbytes(shape, c10::elementSize(descr.type->stored));
  PIXEL3DMM_CHECK_FORMAT(nbytes, file, "shape ", shape_string(shape), " x ", descr_text, " is larger than 2^64 bytes");
  const std::uint64_t data_start = prefix + header_len, available = src.size() - data_start;
  PIXEL3DMM_CHECK_FORMAT(available >= *nbytes, file, "data is truncated, expected ", *nbytes, " bytes for shape ",
                         shape_string(shape), " ", descr_text, ", found ", available);
  PIXEL3DMM_CHECK_FORMAT(available == *nbytes, file, "trailing bytes after the array (several arrays in one file?), ",
                         "expected ", *nbytes, " bytes for shape ", shape_string(shape), " ", descr_text, ", found ",
                         available);

  // Fortran order is C order of the reversed shape; permuting back gives the array's own indexing.
  std::vector<int64_t> stored_shape = shape;
  if (fortran.boolean) std::reverse(stored_shape.begin(), stored_shape.end());
  torch::Tensor t = torch::empty(stored_shape, torch::TensorOptions().dtype(descr.type->stored));
  src.read(data_start, *nbytes, t.data_ptr());
  if (descr.swap) byteswap(t);
  if (descr.type->result == torch::kBool) {
    t = t.ne(0);  // a torch bool byte other than 0/1 is undefined behaviour
  } else if (descr.type->result != descr.type->stored) {
    // Unsigned 16/32-bit: reinterpret the signed bits, widen, mask back to the unsigned value.
    const int64_t mask = descr.type->stored == torch::kShort ? 0xffff : 0xffffffffLL;
    t = t.to(descr.type->result).bitwise_and(mask);
  }
  if (fortran.boolean && t.dim() > 1) {
    std::vector<int64_t> dims(t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) dims[i] = t.dim() - 1 - i;
    t = t.permute(dims).contiguous();
  }
  return t;
}

// --- writing ---

std::string npy_descr(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kDouble:
      return "<f8";
    case torch::kFloat:
      return "<f4";
    case torch::kHalf:
      return "<f2";
    case torch::kLong:
      return "<i8";
    case torch::kInt:
      return "<i4";
    case torch::kShort:
      return "<i2";
    case torch::kChar:
      return "|i1";
    case torch::kByte:
      return "|u1";
    case torch::kBool:
      return "|b1";
    default:
      throw ValueError(concat("dtype ", t.scalar_type(), " has no NumPy equivalent, expected one of Double, Float, ",
                              "Half, Long, Int, Short, Char, Byte, Bool (convert BFloat16 with .float())"));
  }
}

// Magic, version, length and the padded dict, laid out as numpy does: the data starts 64-byte aligned.
std::string npy_header(const torch::Tensor& t) {
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += (i ? ", " : "") + std::to_string(t.size(i));
  shape += t.dim() == 1 ? ",)" : ")";
  const std::string dict = "{'descr': '" + npy_descr(t) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const bool v1 = dict.size() + 1 + 10 + 63 <= 0xffff;  // version 2.0 only for headers beyond 64 KiB
  const size_t prefix = v1 ? 10 : 12;
  const size_t padded = (prefix + dict.size() + 1 + 63) / 64 * 64 - prefix;
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  for (size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((padded >> (8 * i)) & 0xff);
  out += dict;
  out.append(padded - dict.size() - 1, ' ');
  out += '\n';
  return out;
}

std::string_view bytes_of(const torch::Tensor& dense) {
  return {static_cast<const char*>(dense.data_ptr()), dense.nbytes()};
}

// Runs `write(FILE*)` on a temporary file renamed onto `path` when complete.
template <typename Fn>
void write_via_file(const std::string& path, Fn&& write) {
  write_atomically(path, [&](const std::string& tmp) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
    PIXEL3DMM_CHECK_T(Error, f, path, ": cannot write (", std::strerror(errno), ")");
    write(f.get());
    PIXEL3DMM_CHECK_T(Error, std::fflush(f.get()) == 0 && !std::ferror(f.get()), path, ": cannot write (",
                      std::strerror(errno), ")");
  });
}

TensorMap read_npz_from(const ByteSource& zip) {
  TensorMap out;
  for (const detail::ZipMember& m : detail::read_zip_directory(zip)) {
    if (!m.name.empty() && m.name.back() == '/') continue;  // a folder entry holds no array
    const std::string where = concat(zip.name(), ": member '", m.name, "'");
    const std::string bytes = detail::read_zip_member(zip, m);
    std::string key = m.name;
    if (key.size() >= 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    PIXEL3DMM_CHECK_FORMAT(!out.count(key), where, "key '", key, "' appears twice in the archive");
    out.emplace(key, read_npy_from(ByteSource::memory(bytes, where)));
  }
  return out;
}

}  // namespace

torch::Tensor read_npy(const std::string& path) { return read_npy_from(ByteSource::file(path)); }

torch::Tensor parse_npy(std::string_view bytes, const std::string& name) {
  return read_npy_from(ByteSource::memory(bytes, name));
}

TensorMap read_npz(const std::string& path) { return read_npz_from(ByteSource::file(path)); }

TensorMap parse_npz(std::string_view bytes, const std::string& name) {
  return read_npz_from(ByteSource::memory(bytes, name));
}

std::string serialize_npy(const torch::Tensor& tensor) {
  PIXEL3DMM_CHECK(tensor.defined(), "serialize_npy: the tensor is undefined");
  const torch::Tensor dense = detail::dense_cpu(tensor);
  std::string out = npy_header(dense);
  out += bytes_of(dense);
  return out;
}

void write_npy(const std::string& path, const torch::Tensor& tensor) {
  PIXEL3DMM_CHECK(tensor.defined(), path, ": the tensor to write is undefined");
  const torch::Tensor dense = detail::dense_cpu(tensor);
  std::string header;
  try {
    header = npy_header(dense);
  } catch (const ValueError& e) {
    throw ValueError(concat(path, ": ", e.what()));
  }
  write_via_file(path, [&](std::FILE* f) {
    const std::string_view data = bytes_of(dense);
    const bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
                    (data.empty() || std::fwrite(data.data(), 1, data.size(), f) == data.size());
    PIXEL3DMM_CHECK_T(Error, ok, path, ": cannot write (", std::strerror(errno), ")");
  });
}

void write_npz(const std::string& path, const TensorMap& arrays, bool compress) {
  // Everything is converted and validated before the file is created.
  std::vector<std::pair<torch::Tensor, std::string>> members;  // dense data, .npy header
  for (const auto& [key, t] : arrays) {
    PIXEL3DMM_CHECK(t.defined(), path, ": array '", key, "' is undefined");
    PIXEL3DMM_CHECK(detail::is_valid_utf8(key), path, ": array name '", key, "' is not valid UTF-8");
    torch::Tensor dense = detail::dense_cpu(t);
    try {
      members.emplace_back(dense, npy_header(dense));
    } catch (const ValueError& e) {
      throw ValueError(concat(path, ": array '", key, "': ", e.what()));
    }
  }
  write_via_file(path, [&](std::FILE* f) {
    detail::ZipWriter zip(f, path);
    auto it = members.begin();
    for (const auto& [key, t] : arrays) {
      zip.add(key + ".npy", {it->second, bytes_of(it->first)}, compress);
      ++it;
    }
    zip.finish();
  });
}

}  // namespace pixel3dmm::io
