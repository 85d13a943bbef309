#include "pixel3dmm/identity/detail/onnx_graph.h"

#include <set>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::identity::detail {
namespace {

// Field numbers of onnx.proto (ONNX 1.x; stable since IR version 3).
constexpr uint32_t kModelGraph = 7;
constexpr uint32_t kGraphNode = 1, kGraphInitializer = 5, kGraphInput = 11, kGraphOutput = 12;
constexpr uint32_t kNodeOpType = 4;
constexpr uint32_t kTensorName = 8;
constexpr uint32_t kValueInfoName = 1, kValueInfoType = 2;
constexpr uint32_t kTypeTensor = 1, kTensorTypeShape = 2;
constexpr uint32_t kShapeDim = 1, kDimValue = 1;

enum Wire { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  int wire = 0;
  uint64_t varint = 0;
  std::string_view bytes;  ///< payload of a length-delimited field
  std::string_view raw;    ///< the whole field, tag included
};

/// Iterates over the fields of one message; throws FormatError on truncated or malformed data.
class FieldReader {
 public:
  FieldReader(std::string_view data, const std::string& source) : data_(data), source_(source) {}

  bool next(Field& f) {
    if (pos_ >= data_.size()) return false;
    const size_t start = pos_;
    const uint64_t tag = varint();
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire = static_cast<int>(tag & 7);
    f.bytes = {};
    f.varint = 0;
    switch (f.wire) {
      case kVarint:
        f.varint = varint();
        break;
      case kFixed64:
        skip(8);
        break;
      case kFixed32:
        skip(4);
        break;
      case kBytes: {
        const uint64_t n = varint();
        if (n > data_.size() - pos_) fail("a length field runs past the end of the data");
        f.bytes = data_.substr(pos_, n);
        pos_ += n;
        break;
      }
      default:
        fail("unsupported protobuf wire type " + std::to_string(f.wire));
    }
    if (f.number == 0) fail("field number 0");
    f.raw = data_.substr(start, pos_ - start);
    return true;
  }

 private:
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) fail("truncated varint");
      const auto b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
    return 0;
  }
  void skip(size_t n) {
    if (n > data_.size() - pos_) fail("truncated fixed-size field");
    pos_ += n;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(source_ + ": not a valid ONNX model (" + what + " at byte " + std::to_string(pos_) + ")");
  }

  std::string_view data_;
  const std::string& source_;
  size_t pos_ = 0;
};

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_bytes(std::string& out, uint32_t number, std::string_view payload) {
  put_varint(out, (static_cast<uint64_t>(number) << 3) | kBytes);
  put_varint(out, payload.size());
  out.append(payload);
}

/// The first length-delimited field `number` of a message (empty view, found = false when absent).
std::string_view sub_message(std::string_view message, uint32_t number, const std::string& source, bool* found) {
  FieldReader r(message, source);
  Field f;
  while (r.next(f))
    if (f.number == number && f.wire == kBytes) {
      if (found) *found = true;
      return f.bytes;
    }
  if (found) *found = false;
  return {};
}

std::string string_field(std::string_view message, uint32_t number, const std::string& source) {
  return std::string(sub_message(message, number, source, nullptr));
}

std::string_view find_graph(std::string_view model, const std::string& source) {
  bool found = false;
  const std::string_view graph = sub_message(model, kModelGraph, source, &found);
  if (!found) throw FormatError(source + ": not an ONNX model (no graph)");
  return graph;
}

std::set<std::string> initializer_names(std::string_view graph, const std::string& source) {
  std::set<std::string> names;
  FieldReader r(graph, source);
  Field f;
  while (r.next(f))
    if (f.number == kGraphInitializer && f.wire == kBytes) names.insert(string_field(f.bytes, kTensorName, source));
  return names;
}

/// ValueInfoProto -> the dims of its tensor type (-1 when dynamic).
std::vector<int64_t> value_info_shape(std::string_view info, const std::string& source) {
  std::vector<int64_t> shape;
  bool found = false;
  const std::string_view type = sub_message(info, kValueInfoType, source, &found);
  const std::string_view tensor = found ? sub_message(type, kTypeTensor, source, &found) : std::string_view{};
  const std::string_view dims = found ? sub_message(tensor, kTensorTypeShape, source, &found) : std::string_view{};
  if (!found) return shape;
  FieldReader r(dims, source);
  Field f;
  while (r.next(f)) {
    if (f.number != kShapeDim || f.wire != kBytes) continue;
    int64_t value = -1;
    FieldReader d(f.bytes, source);
    Field g;
    while (d.next(g))
      if (g.number == kDimValue && g.wire == kVarint) value = static_cast<int64_t>(g.varint);
    shape.push_back(value);
  }
  return shape;
}

/// ValueInfoProto with its tensor shape replaced by `shape`; the element type and every other field kept.
std::string with_shape(std::string_view info, const std::vector<int64_t>& shape, const std::string& source) {
  std::string dims;
  for (int64_t d : shape) {
    std::string dim;
    put_varint(dim, (static_cast<uint64_t>(kDimValue) << 3) | kVarint);
    put_varint(dim, static_cast<uint64_t>(d));
    put_bytes(dims, kShapeDim, dim);
  }
  auto rewrite = [&](std::string_view message, uint32_t number, auto&& inner) {
    std::string out;
    FieldReader r(message, source);
    Field f;
    while (r.next(f)) {
      if (f.number == number && f.wire == kBytes)
        put_bytes(out, number, inner(f.bytes));
      else
        out.append(f.raw);
    }
    return out;
  };
  return rewrite(info, kValueInfoType, [&](std::string_view type) {
    return rewrite(type, kTypeTensor, [&](std::string_view tensor) {
      return rewrite(tensor, kTensorTypeShape, [&](std::string_view) { return dims; });
    });
  });
}

}  // namespace

OnnxGraphInfo read_onnx_graph(std::string_view model, const std::string& source) {
  const std::string_view graph = find_graph(model, source);
  const std::set<std::string> inits = initializer_names(graph, source);
  OnnxGraphInfo info;
  info.initializers = static_cast<int64_t>(inits.size());
  FieldReader r(graph, source);
  Field f;
  while (r.next(f)) {
    if (f.wire != kBytes) continue;
    if (f.number == kGraphNode) {
      info.op_types.push_back(string_field(f.bytes, kNodeOpType, source));
    } else if (f.number == kGraphInput) {
      std::string name = string_field(f.bytes, kValueInfoName, source);
      if (inits.count(name)) continue;
      if (info.inputs.empty()) info.input_shape = value_info_shape(f.bytes, source);
      info.inputs.push_back(std::move(name));
    } else if (f.number == kGraphOutput) {
      info.outputs.push_back(string_field(f.bytes, kValueInfoName, source));
    }
  }
  if (info.inputs.empty()) throw FormatError(source + ": the ONNX graph has no input");
  return info;
}

std::string fix_onnx_input_shape(std::string_view model, const std::vector<int64_t>& shape, const std::string& source) {
  const OnnxGraphInfo info = read_onnx_graph(model, source);
  if (info.input_shape.size() != shape.size())
    throw FormatError(source + ": the input '" + info.inputs[0] + "' has rank " +
                      std::to_string(info.input_shape.size()) + ", expected " + std::to_string(shape.size()));
  for (size_t i = 0; i < shape.size(); ++i)
    if (info.input_shape[i] >= 0 && info.input_shape[i] != shape[i])
      throw FormatError(source + ": the input '" + info.inputs[0] + "' has dimension " + std::to_string(i) + " = " +
                        std::to_string(info.input_shape[i]) + ", expected " + std::to_string(shape[i]));
  const std::string_view graph = find_graph(model, source);
  const std::set<std::string> inits = initializer_names(graph, source);

  std::string new_graph;
  bool done = false;
  FieldReader gr(graph, source);
  Field f;
  while (gr.next(f)) {
    if (!done && f.number == kGraphInput && f.wire == kBytes &&
        !inits.count(string_field(f.bytes, kValueInfoName, source))) {
      put_bytes(new_graph, kGraphInput, with_shape(f.bytes, shape, source));
      done = true;
    } else {
      new_graph.append(f.raw);
    }
  }
  std::string out;
  out.reserve(model.size() + 64);
  FieldReader mr(model, source);
  while (mr.next(f)) {
    if (f.number == kModelGraph && f.wire == kBytes)
      put_bytes(out, kModelGraph, new_graph);
    else
      out.append(f.raw);
  }
  return out;
}

}  // namespace pixel3dmm::identity::detail
