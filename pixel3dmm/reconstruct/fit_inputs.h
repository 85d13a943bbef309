#pragma once
/// What the fitter needs for one photo, kept on disk between `pixel3dmm predict` and `pixel3dmm fit`: the
/// preprocessed crop (landmarks, pupils, masks, affine back to the photo) and the network's predictions.
///
/// A fit-inputs folder holds
///   crop.png                 the face crop the network saw (S x S)
///   preprocess.json          source, landmarks (68 x 2), iris (2 x 2), affine (2 x 3), box, image size, methods
///   masks.safetensors        uv_mask, normal_mask, fg_mask, valid_bg (1 x S x S float32)
///   seg_og.png               mask method "parser" only: the face parser's label map of the crop (official seg_og
///                            layout: 8-bit single channel, labels 0..18, 20 outside the parser's aligned region)
///   predictions.safetensors  uv (1 x 2 x H x W) and normals (1 x 3 x H x W) as the fitter reads them, float32
///   uv_map.png, normals.png  the same predictions as the official PNGs (8-bit; for viewing and other tools)
///   preprocess.png           the crop with landmarks, pupils and mask outlines drawn
/// Every file is written atomically.

#include <string>

#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/predict/predictor.h"
#include "pixel3dmm/preprocess/preprocess.h"

namespace pixel3dmm::reconstruct {

/// The fitter's target for a preprocessed photo and its predictions: the masks are resized (nearest) to the
/// maps' size, landmarks and pupils scaled from crop pixels to map pixels (landmarks_to_size).
fit::FitTarget make_target(const preprocess::Preprocessed& input, const predict::Predictions& predictions);

/// Landmark or pupil points [..., 2] from one image size to another `scale` times as large. PIPNet's points
/// (landmark_method "pipnet") are scaled as the official tracker scales its saved fractions (x * scale: the
/// official code wins, although at 512 -> 256 that puts them a quarter pixel right of and below the same pixel
/// centres); dlib's, ours, keep their pixel centres: (x + 0.5) * scale - 0.5.
torch::Tensor landmarks_to_size(const torch::Tensor& points, double scale, const std::string& landmark_method);

/// Writes a fit-inputs folder (created if missing). predictions: batch 1, both maps.
void write_fit_inputs(const std::string& folder, const preprocess::Preprocessed& input,
                      const predict::Predictions& predictions);

/// Reads a fit-inputs folder back. Throws FileNotFound naming the missing file, FormatError naming the file and
/// key for a malformed one.
struct FitInputs {
  preprocess::Preprocessed input;
  predict::Predictions predictions;  ///< uv and normals only
};
FitInputs read_fit_inputs(const std::string& folder);

}  // namespace pixel3dmm::reconstruct
