#pragma once
/// Where a fit's identity prior comes from. The official pipeline runs MICA on every crop it fits (every
/// max(1, N / 10)-th frame of a sequence) and the fit starts the identity there and pulls `reg/shape` toward it
/// (official `ignore_mica: False`). Users choose one of:
///   - MICA weights (`mica`): the code of each crop, from five keypoints: SCRFD-10G's when `scrfd` is given (the
///     official detector), else the five points of the crop's 68 landmarks (eye centres, nose tip, mouth corners;
///     ours, documented in docs/identity.md);
///   - a code they already have (`code`: a .npy of the model's identity coefficients, e.g. MICA's identity.npy);
///   - nothing: no prior (the identity starts at zero and is pulled toward zero).

#include <torch/types.h>

#include <memory>
#include <string>

#include "pixel3dmm/identity/mica.h"
#include "pixel3dmm/identity/scrfd.h"

namespace pixel3dmm::identity {

struct IdentityPriorOptions {
  std::string mica;   ///< converted MICA weights (python -m pixel3dmm.convert_mica mica.tar); empty: no MICA
  std::string scrfd;  ///< SCRFD-10G ONNX file for MICA's keypoints (official); empty: from the 68 landmarks
  std::string code;   ///< an identity .npy (K or 1 x K float); empty: none. Not together with `mica`.
};

class IdentityPrior {
 public:
  /// Loads what the options name: FileNotFound / FormatError naming the file; ValueError when both are given.
  explicit IdentityPrior(const IdentityPriorOptions& options = {});

  /// False when there is no prior (fits then start the identity at zero).
  bool enabled() const { return mica_ || code_.defined(); }
  /// True when the prior is computed per crop (MICA), false for a fixed code or none.
  bool per_crop() const { return static_cast<bool>(mica_); }

  /// The prior for one face. crop: 1 x 3 x S x S (or 3 x S x S) float RGB in [0, 1]; landmarks: 1 x 68 x 2 or
  /// 68 x 2 iBUG landmarks in crop pixels (MICA's keypoints without SCRFD). Returns the (K,) float32 code, or an
  /// undefined tensor when there is no prior or SCRFD finds no face on the crop (the official code skips such a
  /// frame). ValueError naming `source` when the keypoints are unusable.
  torch::Tensor code(const torch::Tensor& crop, const torch::Tensor& landmarks, const std::string& source = "") const;

  /// One line for logs and report.json: "none", "MICA (<file>; keypoints from SCRFD <file> | from the 68
  /// landmarks)", "<file>".
  std::string describe() const;

 private:
  IdentityPriorOptions options_;
  Mica mica_{nullptr};
  std::shared_ptr<ScrfdDetector> scrfd_;  // shared: detection is not const, copies of the prior share one network
  torch::Tensor code_;
};

/// The five ArcFace keypoints (image-left eye, image-right eye, nose tip, image-left and image-right mouth
/// corner) from 68 iBUG landmarks: the means of 36-41 and 42-47, point 30, points 48 and 54.
/// landmarks: 68 x 2 or 1 x 68 x 2 -> 5 x 2 float32.
torch::Tensor keypoints_from_landmarks68(const torch::Tensor& landmarks);

}  // namespace pixel3dmm::identity
