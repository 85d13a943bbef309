// SCRFD (identity/scrfd.h): the ONNX reader, bad detector files, bad raw outputs, and a hand-computed decode.
// Decode parity with our Python reference and the detector on a stand-in export are in tests/python/test_scrfd.py.
#include <torch/torch.h>

#include <fstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/identity/detail/onnx_graph.h"
#include "pixel3dmm/identity/scrfd.h"
#include "test_util.h"

using namespace pixel3dmm;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

// A minimal protobuf writer, enough for a hand-made ONNX model (field numbers of onnx.proto).
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
std::string bytes_field(uint32_t number, const std::string& payload) {
  std::string out;
  varint(out, (static_cast<uint64_t>(number) << 3) | 2);
  varint(out, payload.size());
  return out + payload;
}
std::string varint_field(uint32_t number, uint64_t v) {
  std::string out;
  varint(out, static_cast<uint64_t>(number) << 3);
  varint(out, v);
  return out;
}

/// ValueInfoProto of a float tensor; negative dims are dynamic ("?").
std::string value_info(const std::string& name, const std::vector<int64_t>& dims) {
  std::string shape;
  for (const int64_t d : dims)
    shape += bytes_field(1, d >= 0 ? varint_field(1, static_cast<uint64_t>(d)) : bytes_field(2, "?"));
  const std::string tensor = varint_field(1, 1) + bytes_field(2, shape);
  return bytes_field(1, name) + bytes_field(2, bytes_field(1, tensor));
}

/// A model whose `outputs` outputs are each Relu(input).
std::string relu_model(int outputs, const std::vector<int64_t>& input_dims) {
  std::string graph;
  for (int i = 0; i < outputs; ++i) {
    const std::string out = "out" + std::to_string(i);
    graph += bytes_field(
        1, bytes_field(1, "input.1") + bytes_field(2, out) + bytes_field(3, "relu" + out) + bytes_field(4, "Relu"));
  }
  graph += bytes_field(2, "g") + bytes_field(11, value_info("input.1", input_dims));
  for (int i = 0; i < outputs; ++i) graph += bytes_field(12, value_info("out" + std::to_string(i), {-1, 3, -1, -1}));
  const std::string opset = bytes_field(1, "") + varint_field(2, 11);
  return varint_field(1, 7) + bytes_field(7, graph) + bytes_field(8, opset);
}

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

/// Nine zero outputs of the right shapes for a 64 x 64 input (cells 64, 16, 4).
std::vector<torch::Tensor> zero_outputs(int64_t s = 64) {
  std::vector<torch::Tensor> outs;
  for (const int64_t c : {1, 4, 10})
    for (const int64_t stride : {8, 16, 32}) outs.push_back(torch::zeros({(s / stride) * (s / stride) * 2, c}));
  return outs;
}

}  // namespace

TEST_CASE("scrfd: ONNX reader lists the graph and fixes the input's dynamic dims", "[identity][scrfd]") {
  const std::string model = relu_model(9, {-1, 3, -1, -1});
  const auto info = identity::detail::read_onnx_graph(model, "m.onnx");
  REQUIRE(info.inputs == std::vector<std::string>{"input.1"});
  REQUIRE(info.input_shape == std::vector<int64_t>{-1, 3, -1, -1});
  REQUIRE(info.outputs.size() == 9);
  REQUIRE(info.outputs[8] == "out8");
  REQUIRE(info.op_types == std::vector<std::string>(9, "Relu"));
  const std::string fixed = identity::detail::fix_onnx_input_shape(model, {1, 3, 224, 224}, "m.onnx");
  const auto fixed_info = identity::detail::read_onnx_graph(fixed, "m.onnx");
  REQUIRE(fixed_info.input_shape == std::vector<int64_t>{1, 3, 224, 224});
  REQUIRE(fixed_info.outputs == info.outputs);
  REQUIRE(fixed_info.op_types == info.op_types);
  require_throws_with<FormatError>(
      [&] {
        identity::detail::fix_onnx_input_shape(model, {1, 4, 224, 224}, "m.onnx");
      },
      {"m.onnx", "dimension 1 = 3, expected 4"});
}

TEST_CASE("scrfd: bad detector files are named with what is wrong", "[identity][scrfd]") {
  TempDir dir;
  require_throws_with<FileNotFound>([&] { identity::ScrfdDetector(dir.file("missing.onnx")); },
                                    {"missing.onnx", "not found"});
  const auto text = dir.file("text.onnx");
  write(text, "this is not an ONNX model\n");
  require_throws_with<FormatError>([&] { identity::ScrfdDetector{text}; }, {text, "not a valid ONNX model"});
  const auto empty = dir.file("empty.onnx");
  write(empty, "");
  require_throws_with<FormatError>([&] { identity::ScrfdDetector{empty}; }, {empty, "no graph"});
  const auto one = dir.file("one_output.onnx");
  write(one, relu_model(1, {1, 3, -1, -1}));
  require_throws_with<FormatError>([&] { identity::ScrfdDetector{one}; }, {one, "9 outputs", "found 1"});
  const auto gray = dir.file("gray.onnx");
  write(gray, relu_model(9, {1, 1, -1, -1}));
  require_throws_with<FormatError>([&] { identity::ScrfdDetector{gray}; }, {gray, "expected shape [1, 3, H, W]"});
  // Nine outputs that OpenCV imports and runs, but of the input's shape: caught by the zero-input run.
  const auto shapes = dir.file("wrong_shapes.onnx");
  write(shapes, relu_model(9, {-1, 3, -1, -1}));
  require_throws_with<FormatError>([&] { identity::ScrfdDetector{shapes}; },
                                   {shapes, "not an SCRFD detector", "expected shape [1568, 1]", "[1, 3, 224, 224]"});
}

TEST_CASE("scrfd: decode refuses wrong raw outputs", "[identity][scrfd]") {
  auto outs = zero_outputs();
  require_throws_with<ValueError>(
      [&] {
        identity::decode_scrfd({outs.begin(), outs.end() - 1}, 64, 1.0f);
      },
      {"9 raw SCRFD outputs", "found 8"});
  outs[4] = torch::zeros({32, 5});
  require_throws_with<ValueError>([&] { identity::decode_scrfd(outs, 64, 1.0f); },
                                  {"SCRFD output 4", "stride 16", "expected shape [32, 4], found [32, 5]"});
  outs = zero_outputs();
  outs[0] = torch::zeros({1, 128, 1});  // a leading batch dimension of 1 is accepted
  REQUIRE(identity::decode_scrfd(outs, 64, 1.0f).boxes.size(0) == 0);
  require_throws_with<ValueError>([&] { identity::decode_scrfd(outs, 64, 0.0f); }, {"det_scale"});
}

TEST_CASE("scrfd: decode of hand-made anchors, threshold equality, NMS and the centre face", "[identity][scrfd]") {
  auto outs = zero_outputs();
  // Stride 16, cell (x 2, y 1), second anchor: row (1 * 4 + 2) * 2 + 1 = 13; centre (32, 16).
  outs[1][13][0] = 0.5f;  // exactly the threshold: kept (>=)
  outs[4][13] = torch::tensor({1.0f, 0.5f, 1.5f, 2.0f});
  outs[7][13] = torch::arange(10, torch::kFloat32) / 4;
  // Stride 8, cell (0, 0), first anchor, just below the threshold: dropped.
  outs[0][0][0] = std::nextafter(0.5f, 0.0f);
  // Stride 32, cell (1, 1), first anchor: row 6, centre (32, 32); overlaps the first box by less than 0.4.
  outs[2][6][0] = 0.9f;
  outs[5][6] = torch::tensor({0.25f, 0.25f, 0.25f, 0.25f});
  const float det_scale = 0.5f;
  const auto d = identity::decode_scrfd(outs, 64, det_scale);
  REQUIRE(d.boxes.size(0) == 2);
  REQUIRE(d.scores[0].item<float>() == 0.9f);  // descending score
  REQUIRE(d.scores[1].item<float>() == 0.5f);
  const auto box0 = torch::tensor({24.0f, 24.0f, 40.0f, 40.0f}) / det_scale;
  const auto box1 = torch::tensor({32.0f - 16, 16.0f - 8, 32.0f + 24, 16.0f + 32}) / det_scale;
  REQUIRE(torch::equal(d.boxes[0], box0));
  REQUIRE(torch::equal(d.boxes[1], box1));
  auto kps1 = (torch::arange(10, torch::kFloat32) / 4 * 16).reshape({5, 2});
  kps1.select(1, 0) += 32;
  kps1.select(1, 1) += 16;
  REQUIRE(torch::equal(d.keypoints[1], kps1 / det_scale));
  // A stricter NMS threshold suppresses the second box (box 0 lies inside it: overlap 33^2 / 81^2 ~ 0.17).
  REQUIRE(identity::decode_scrfd(outs, 64, det_scale, 0.5f, 0.1f).boxes.size(0) == 1);
  // Centre face: image 128 x 128, centre (64, 64): box 0's centre (64, 64) wins.
  REQUIRE(identity::centre_face(d, 128, 128) == 0);
  REQUIRE(identity::centre_face(
              identity::ScrfdDetections{torch::zeros({0, 4}), torch::zeros({0}), torch::zeros({0, 5, 2})}, 128, 128) ==
          -1);
  // Equal distances: the first one wins.
  identity::ScrfdDetections tie{torch::tensor({{10.0f, 0.0f, 20.0f, 10.0f}, {0.0f, 10.0f, 10.0f, 20.0f}}),
                                torch::ones({2}), torch::zeros({2, 5, 2})};
  REQUIRE(identity::centre_face(tie, 20, 20) == 0);
  tie.boxes = tie.boxes.flip(0).contiguous();
  REQUIRE(identity::centre_face(tie, 20, 20) == 0);
  tie.boxes[0][0] = -0.5f;  // now the other one is nearer
  REQUIRE(identity::centre_face(tie, 20, 20) == 1);
}
