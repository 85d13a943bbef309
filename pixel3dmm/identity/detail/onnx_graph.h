#pragma once
/// What pixel3dmm needs from an ONNX file without linking protobuf: the graph's input and output names, the input's
/// declared shape, the op types, and a copy of the file with the input's dynamic dimensions fixed.
///
/// OpenCV 4.6's ONNX importer folds Shape nodes at import time from the declared input shape and refuses dynamic
/// ("?") dimensions, which SCRFD's exports have (its FPN upsamples to a size computed from a tensor's shape). Fixing
/// the input to the one size the official code runs it at makes every such shape a constant.
///
/// Only the protobuf wire format is parsed (ModelProto.graph -> GraphProto.{node, input, output, initializer}); all
/// other fields are copied byte for byte.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pixel3dmm::identity::detail {

struct OnnxGraphInfo {
  /// Graph inputs that are not initializers, in file order.
  std::vector<std::string> inputs;
  /// Declared shape of the first input; -1 for a dynamic dimension (dim_param or missing value).
  std::vector<int64_t> input_shape;
  /// Graph outputs in file order (the order insightface reads them in).
  std::vector<std::string> outputs;
  /// op_type of every node, in file order.
  std::vector<std::string> op_types;
  /// Number of initializers.
  int64_t initializers = 0;
};

/// Parses the graph; FormatError naming `source` for bytes that are not an ONNX model.
OnnxGraphInfo read_onnx_graph(std::string_view model, const std::string& source);

/// The model with the first input's dimensions set to `shape` (same rank as declared); FormatError otherwise.
std::string fix_onnx_input_shape(std::string_view model, const std::vector<int64_t>& shape, const std::string& source);

}  // namespace pixel3dmm::identity::detail
