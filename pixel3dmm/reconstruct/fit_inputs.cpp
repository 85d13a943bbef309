#include "pixel3dmm/reconstruct/fit_inputs.h"

#include <filesystem>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/map_png.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/io/tensor_json.h"

namespace pixel3dmm::reconstruct {
namespace {

namespace fs = std::filesystem;

torch::Tensor resize_mask_nearest(const torch::Tensor& mask, int64_t size) {  // 1 x h x w -> 1 x size x size
  if (mask.size(-1) == size && mask.size(-2) == size) return mask;
  // Pillow's NEAREST positions, as the fitter (fit/fitter.cpp resize_mask) and the official tracker.
  return torch::_upsample_nearest_exact2d(mask.unsqueeze(1), {size, size}).squeeze(1);
}

torch::Tensor from_json_rows(const io::json& j, int64_t rows, int64_t cols, const std::string& file,
                             const std::string& key, torch::ScalarType dtype) {
  PIXEL3DMM_CHECK_FORMAT(j.contains(key) && j[key].is_array() && static_cast<int64_t>(j[key].size()) == rows, file,
                         "key '", key, "': expected ", rows, " rows of ", cols, " numbers");
  auto t = torch::empty({rows, cols}, torch::kDouble);
  for (int64_t i = 0; i < rows; ++i) {
    const auto& row = j[key][i];
    PIXEL3DMM_CHECK_FORMAT(row.is_array() && static_cast<int64_t>(row.size()) == cols, file, "key '", key, "' row ",
                           i, ": expected ", cols, " numbers");
    for (int64_t c = 0; c < cols; ++c) {
      PIXEL3DMM_CHECK_FORMAT(row[c].is_number(), file, "key '", key, "' row ", i, ": not a number");
      t[i][c] = row[c].get<double>();
    }
  }
  return t.to(dtype);
}

torch::Tensor require_tensor(const io::TensorMap& m, const std::string& key, const std::vector<int64_t>& shape,
                             const std::string& file) {
  const auto it = m.find(key);
  PIXEL3DMM_CHECK_FORMAT(it != m.end(), file, "missing tensor '", key, "'");
  check_shape(it->second, shape, file + ": tensor '" + key + "'");
  check_finite(it->second, file + ": tensor '" + key + "'");
  return it->second.to(torch::kFloat);
}

}  // namespace

torch::Tensor landmarks_to_size(const torch::Tensor& points, double scale, const std::string& landmark_method) {
  if (landmark_method == "pipnet") return points * scale;
  return (points + 0.5) * scale - 0.5;
}

fit::FitTarget make_target(const preprocess::Preprocessed& input, const predict::Predictions& p) {
  PIXEL3DMM_CHECK(p.uv.defined() && p.normals.defined(),
                  "make_target: the fit needs both the UV and the normal predictions");
  check_shape(p.uv, {1, 2, -1, -1}, "predictions uv");
  const int64_t size = p.uv.size(-1);
  check_shape(p.normals, {1, 3, size, size}, "predictions normals");
  const double scale = double(size) / double(input.crop.size(-1));
  fit::FitTarget t;
  t.uv = p.uv;
  t.normals = p.normals;
  t.uv_mask = resize_mask_nearest(input.uv_mask, size);
  t.normal_mask = resize_mask_nearest(input.normal_mask, size);
  t.fg_mask = resize_mask_nearest(input.fg_mask, size);
  t.valid_bg = resize_mask_nearest(input.valid_bg, size);
  t.landmarks = landmarks_to_size(input.landmarks, scale, input.landmark_method);
  if (input.iris.defined()) t.iris = landmarks_to_size(input.iris, scale, input.landmark_method);
  t.image = input.crop.size(-1) == size ? input.crop
                                        : torch::upsample_bilinear2d(input.crop, {size, size}, false);
  return t;
}

void write_fit_inputs(const std::string& folder, const preprocess::Preprocessed& input,
                      const predict::Predictions& predictions) {
  PIXEL3DMM_CHECK(predictions.uv.defined() && predictions.normals.defined() && predictions.uv.size(0) == 1,
                  "write_fit_inputs: expected batch-1 UV and normal predictions");
  const fs::path dir(folder);
  fs::create_directories(dir);
  io::write_image((dir / "crop.png").string(), input.crop);
  io::write_image((dir / "preprocess.png").string(), preprocess::draw_preprocessed(input));
  io::json j = {{"source", input.source},
                {"image_height", input.image_height},
                {"image_width", input.image_width},
                {"crop_size", input.crop.size(-1)},
                {"score", input.score},
                {"mask_method", input.mask_method},
                {"crop_method", input.crop_method},
                {"landmark_method", input.landmark_method},
                {"landmarks", io::tensor_to_json(input.landmarks[0])},
                {"iris", io::tensor_to_json(input.iris[0])},
                {"affine", io::tensor_to_json(input.affine)},
                {"box", io::tensor_to_json(input.box.reshape({4}))}};
  // PIPNet's 98 WFLW points as the official PIPnet_landmarks/*.npy holds them (fractions of the crop).
  if (input.wflw.defined()) j["wflw"] = io::tensor_to_json(input.wflw);
  if (input.labels.defined()) j["parser_keypoints"] = input.keypoints;
  io::write_json((dir / "preprocess.json").string(), j);
  // The parser's label map in the official seg_og layout (8-bit single channel, value = label).
  if (input.labels.defined())
    io::write_image((dir / "seg_og.png").string(), input.labels.reshape({1, 1, input.labels.size(-2),
                                                                          input.labels.size(-1)})
                                                       .to(torch::kFloat)
                                                       .div(255.0f));
  io::write_safetensors((dir / "masks.safetensors").string(), {{"uv_mask", input.uv_mask.contiguous()},
                                                              {"normal_mask", input.normal_mask.contiguous()},
                                                              {"fg_mask", input.fg_mask.contiguous()},
                                                              {"valid_bg", input.valid_bg.contiguous()}});
  io::write_safetensors((dir / "predictions.safetensors").string(),
                        {{"uv", predictions.uv.contiguous()}, {"normals", predictions.normals.contiguous()}},
                        {{"uv", "(u, 1 - v) in [0, 1]"}, {"normals", "FLAME frame, [-1, 1]"}});
  // The official PNG encodings, for eyes and other tools.
  io::write_image((dir / "uv_map.png").string(), io::uv_png_image(predictions.uv));
  io::write_image((dir / "normals.png").string(), io::normals_png_image(predictions.normals));
}

FitInputs read_fit_inputs(const std::string& folder) {
  const fs::path dir(folder);
  PIXEL3DMM_CHECK_T(FileNotFound, fs::is_directory(dir), folder, ": no such folder (expected the output of "
                    "`pixel3dmm predict`)");
  FitInputs r;
  auto& in = r.input;
  const std::string json_path = (dir / "preprocess.json").string();
  const io::json j = io::read_json(json_path);
  in.crop = io::read_image((dir / "crop.png").string());
  const int64_t s = in.crop.size(-1);
  in.landmarks = from_json_rows(j, 68, 2, json_path, "landmarks", torch::kFloat)
                     .unsqueeze(0);
  in.iris = from_json_rows(j, 2, 2, json_path, "iris", torch::kFloat).unsqueeze(0);
  in.affine = from_json_rows(j, 2, 3, json_path, "affine", torch::kDouble);
  in.source = j.value("source", std::string());
  in.mask_method = j.value("mask_method", std::string());
  in.crop_method = j.value("crop_method", std::string());
  in.landmark_method = j.value("landmark_method", std::string());
  in.image_height = j.value("image_height", int64_t{0});
  in.image_width = j.value("image_width", int64_t{0});
  in.score = j.value("score", 0.0);
  const std::string masks_path = (dir / "masks.safetensors").string();
  const auto masks = io::read_safetensors(masks_path).tensors;
  in.uv_mask = require_tensor(masks, "uv_mask", {1, s, s}, masks_path);
  in.normal_mask = require_tensor(masks, "normal_mask", {1, s, s}, masks_path);
  in.fg_mask = require_tensor(masks, "fg_mask", {1, s, s}, masks_path);
  in.valid_bg = require_tensor(masks, "valid_bg", {1, s, s}, masks_path);
  const std::string pred_path = (dir / "predictions.safetensors").string();
  const auto pred = io::read_safetensors(pred_path).tensors;
  r.predictions.uv = require_tensor(pred, "uv", {1, 2, -1, -1}, pred_path);
  const int64_t m = r.predictions.uv.size(-1);
  r.predictions.normals = require_tensor(pred, "normals", {1, 3, m, m}, pred_path);
  return r;
}

}  // namespace pixel3dmm::reconstruct
