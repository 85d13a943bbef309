#include "pixel3dmm/io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <vector>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/detail/byte_source.h"
#include "pixel3dmm/io/detail/tensor_bytes.h"

namespace pixel3dmm::io {
namespace {

using json = nlohmann::json;
using detail::ByteSource;
using pixel3dmm::detail::concat;

// The reference implementation refuses headers above 100 MB; so do we, before reading one.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  std::uint64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kDouble, 8}, {"F32", torch::kFloat, 4}, {"F16", torch::kHalf, 2},  {"BF16", torch::kBFloat16, 2},
    {"I64", torch::kLong, 8},   {"I32", torch::kInt, 4},   {"I16", torch::kShort, 2}, {"I8", torch::kChar, 1},
    {"U8", torch::kByte, 1},    {"BOOL", torch::kBool, 1},
};
constexpr const char* kDtypeList = "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL";

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

// One tensor's header entry, validated.
struct Entry {
  std::string key;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  std::uint64_t begin, end;  // relative to the data section
};

struct Header {
  std::vector<Entry> entries;  // sorted by begin
  Metadata metadata;
  std::uint64_t data_start = 0;  // absolute offset of the data section
};

std::string offsets_string(std::uint64_t begin, std::uint64_t end) { return concat("[", begin, ", ", end, "]"); }

Entry parse_entry(const std::string& file, const std::string& key, const json& v, std::uint64_t data_size) {
  const std::string where = concat(file, ": tensor '", key, "'");
  auto fail = [&](const auto&... msg) { throw FormatError(concat(where, ": ", msg...)); };
  if (!v.is_object()) fail("expected an object {dtype, shape, data_offsets}, found ", v.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) fail("missing field '", field, "'");

  Entry e;
  e.key = key;
  const json& dtype = v["dtype"];
  if (!dtype.is_string()) fail("dtype must be a string, expected one of ", kDtypeList, ", found ", dtype.dump());
  e.dtype = dtype_by_name(dtype.get<std::string>());
  if (!e.dtype) fail("unknown dtype, expected one of ", kDtypeList, ", found '", dtype.get<std::string>(), "'");

  // nlohmann parses non-negative integers as number_unsigned; negatives and fractions are another type.
  const json& shape = v["shape"];
  const bool shape_ok =
      shape.is_array() && std::all_of(shape.begin(), shape.end(), [](const json& d) {
        return d.is_number_unsigned() && d.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<int64_t>::max());
      });
  if (!shape_ok) fail("shape must be a list of non-negative integers, found ", shape.dump());
  for (const json& d : shape) e.shape.push_back(static_cast<int64_t>(d.get<std::uint64_t>()));

  const json& off = v["data_offsets"];
  const bool off_ok = off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned();
  if (!off_ok) fail("data_offsets must be [begin, end] with non-negative integers, found ", off.dump());
  e.begin = off[0].get<std::uint64_t>();
  e.end = off[1].get<std::uint64_t>();
  if (e.begin > e.end) fail("data_offsets ", offsets_string(e.begin, e.end), " are reversed, expected begin <= end");

  const auto nbytes = detail::checked_nbytes(e.shape, e.dtype->size);
  if (!nbytes) fail("shape ", shape_string(e.shape), " x ", e.dtype->name, " is larger than 2^64 bytes");
  if (e.end > data_size)
    fail("data_offsets ", offsets_string(e.begin, e.end),
         " run past the end of the data section, expected end <= ", data_size, ", found ", e.end);
  if (e.end - e.begin != *nbytes)
    fail("byte range ", offsets_string(e.begin, e.end), " does not match shape ", shape_string(e.shape), " x ",
         e.dtype->name, ", expected ", *nbytes, " bytes, found ", e.end - e.begin);
  return e;
}

Metadata parse_metadata(const std::string& file, const json& v) {
  PIXEL3DMM_CHECK_FORMAT(v.is_object(), file, "__metadata__ must be an object of strings, found ", v.type_name());
  Metadata m;
  for (const auto& [k, s] : v.items()) {
    PIXEL3DMM_CHECK_FORMAT(s.is_string(), file, "__metadata__ '", k, "': expected a string, found ", s.dump());
    m.emplace(k, s.get<std::string>());
  }
  return m;
}

// Validates everything about the file except the tensor bytes themselves; allocates nothing beyond the header,
// whose length is checked against the file size first.
Header parse_header(const ByteSource& src) {
  const std::string& file = src.name();
  PIXEL3DMM_CHECK_FORMAT(src.size() >= 8, file,
                         "file too short for a safetensors header length, expected at least 8 bytes, found ",
                         src.size());
  unsigned char len_bytes[8];
  src.read(0, 8, len_bytes);
  const std::uint64_t n = detail::load_le(len_bytes, 8);
  PIXEL3DMM_CHECK_FORMAT(n <= kMaxHeaderBytes, file, "header length is absurd, expected at most ", kMaxHeaderBytes,
                         " bytes, found ", n);
  PIXEL3DMM_CHECK_FORMAT(n <= src.size() - 8, file, "header length runs past the end of the file, expected at most ",
                         src.size() - 8, " bytes, found ", n);

  // A name given twice would silently drop one tensor (JSON objects keep the last value): refuse it.
  std::set<std::string> names;
  auto refuse_duplicates = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !names.insert(parsed.get<std::string>()).second)
      throw FormatError(concat(file, ": tensor '", parsed.get<std::string>(), "': appears twice in the header"));
    // The header is three levels deep ({name: {shape: [...]}}); refuse deeper nesting as it is read.
    if (depth > 4 && (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start))
      throw FormatError(concat(file, ": header JSON nested deeper than 4 levels"));
    return true;
  };
  json j;
  try {
    j = json::parse(src.read_string(8, n), refuse_duplicates);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(concat(file, ": header is not valid JSON (", e.what(), ")"));
  }
  PIXEL3DMM_CHECK_FORMAT(j.is_object(), file, "header must be a JSON object, found ", j.type_name());

  Header h;
  h.data_start = 8 + n;
  const std::uint64_t data_size = src.size() - h.data_start;
  for (const auto& [key, v] : j.items()) {
    if (key == "__metadata__") {
      h.metadata = parse_metadata(file, v);
    } else {
      h.entries.push_back(parse_entry(file, key, v, data_size));
    }
  }

  // Overlap check on ranges sorted by start; empty tensors occupy no bytes and overlap nothing. Bytes covered by
  // no tensor are allowed.
  std::sort(h.entries.begin(), h.entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  const Entry* last = nullptr;  // the non-empty range reaching furthest so far
  for (const Entry& e : h.entries) {
    if (e.begin == e.end) continue;
    PIXEL3DMM_CHECK_FORMAT(!last || e.begin >= last->end, file, "tensor '", e.key, "': data_offsets ",
                           offsets_string(e.begin, e.end), " overlap those of tensor '", last->key, "' ",
                           offsets_string(last->begin, last->end), ", expected disjoint ranges");
    if (!last || e.end > last->end) last = &e;
  }
  return h;
}

SafetensorsFile read_all(const ByteSource& src) {
  Header h = parse_header(src);
  SafetensorsFile out;
  out.metadata = std::move(h.metadata);
  for (const Entry& e : h.entries) {
    // Bools go through bytes: a byte other than 0/1 in a torch bool is undefined behaviour, != 0 normalises it.
    const bool is_bool = e.dtype->type == torch::kBool;
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(is_bool ? torch::kByte : e.dtype->type));
    src.read(h.data_start + e.begin, e.end - e.begin, t.data_ptr());
    out.tensors.emplace(e.key, is_bool ? t.ne(0) : t);
  }
  return out;
}

// --- writing ---

struct Planned {
  std::string key;
  torch::Tensor data;  // dense, contiguous, CPU
  const DtypeInfo* dtype;
  std::uint64_t begin, end;
};

struct Plan {
  std::string header;            // length prefix + JSON + padding
  std::vector<Planned> tensors;  // in file order
  std::uint64_t total = 0;
};

Plan plan(const TensorMap& tensors, const Metadata& metadata) {
  Plan p;
  for (const auto& [key, t] : tensors) {
    PIXEL3DMM_CHECK(key != "__metadata__", "safetensors: '__metadata__' is reserved and cannot name a tensor");
    PIXEL3DMM_CHECK(t.defined(), "safetensors: tensor '", key, "' is undefined");
    const DtypeInfo* dtype = dtype_by_type(t.scalar_type());
    PIXEL3DMM_CHECK(dtype, "safetensors: tensor '", key, "': dtype ", t.scalar_type(),
                    " cannot be stored, expected one of ", kDtypeList);
    p.tensors.push_back({key, detail::dense_cpu(t), dtype, 0, 0});
  }
  // Larger elements first: the data section starts 8-byte aligned, so every tensor then starts at a multiple of its
  // element size and memory-mapping readers can use it in place. Ties keep name order, so output is reproducible.
  std::stable_sort(p.tensors.begin(), p.tensors.end(),
                   [](const Planned& a, const Planned& b) { return a.dtype->size > b.dtype->size; });

  json j = json::object();
  for (Planned& t : p.tensors) {
    t.begin = p.total;
    t.end = p.total += t.data.nbytes();
    j[t.key] = {{"dtype", t.dtype->name}, {"shape", t.data.sizes().vec()}, {"data_offsets", {t.begin, t.end}}};
  }
  if (!metadata.empty()) j["__metadata__"] = metadata;

  std::string text;
  try {
    text = j.dump();  // std::map-backed objects: keys come out sorted
  } catch (const json::type_error& e) {
    throw ValueError(concat("safetensors: a tensor name or metadata string is not valid UTF-8 (", e.what(), ")"));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the reference pads with spaces to 8 bytes
  p.header.resize(8);
  for (int i = 0; i < 8; ++i) p.header[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  p.header += text;
  return p;
}

template <typename Sink>
void emit(const Plan& p, Sink&& sink) {
  sink(p.header.data(), p.header.size());
  for (const Planned& t : p.tensors) sink(static_cast<const char*>(t.data.data_ptr()), t.end - t.begin);
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) { return read_all(ByteSource::file(path)); }

Metadata read_safetensors_metadata(const std::string& path) { return parse_header(ByteSource::file(path)).metadata; }

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name) {
  return read_all(ByteSource::memory(bytes, name));
}

std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata) {
  const Plan p = plan(tensors, metadata);
  std::string out;
  out.reserve(p.header.size() + p.total);
  emit(p, [&](const char* data, std::uint64_t n) { out.append(data, n); });
  return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  const Plan p = plan(tensors, metadata);  // validate before touching the file system
  write_atomically(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    PIXEL3DMM_CHECK_T(Error, f, path, ": cannot write (", std::strerror(errno), ")");
    bool ok = true;
    emit(p, [&](const char* data, std::uint64_t n) { ok = ok && (n == 0 || std::fwrite(data, 1, n, f) == n); });
    ok = std::fflush(f) == 0 && ok;
    const int err = errno;
    std::fclose(f);
    PIXEL3DMM_CHECK_T(Error, ok, path, ": cannot write (", std::strerror(err), ")");
  });
}

}  // namespace pixel3dmm::io
