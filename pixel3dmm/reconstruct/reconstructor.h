#pragma once
/// Photo -> mesh: preprocess (face, landmarks, crop, masks) -> predict (UV and normal maps) -> fit (FLAME and
/// camera). The three stages' objects are loaded once and reused for every photo.

#include <string>
#include <vector>

#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/outputs.h"
#include "pixel3dmm/identity/identity_prior.h"
#include "pixel3dmm/predict/predictor.h"
#include "pixel3dmm/preprocess/preprocess.h"

namespace pixel3dmm::reconstruct {

struct ReconstructorOptions {
  /// FLAME model file (.npz / .safetensors / the official .pkl converted by `pixel3dmm convert`); empty = the
  /// synthetic FLAME-layout model (for trying the pipeline, not for real faces).
  std::string flame;
  /// Converted networks (.safetensors with the .json beside; `python -m pixel3dmm.convert_checkpoint`).
  std::string uv_weights;
  std::string normal_weights;
  preprocess::PreprocessOptions preprocess;
  predict::PredictorOptions predict;
  fit::FitConfig fit;
  /// The identity prior (official: MICA's code of each crop); default: none.
  identity::IdentityPriorOptions identity;
};

/// One photo's reconstruction. For an image set, `result` is the joint fit and `index` this photo's row in it.
struct Reconstruction {
  preprocess::Preprocessed input;
  predict::Predictions predictions;  ///< batch 1, at the network's output size
  fit::FitTarget target;
  fit::FitResult result;
  int64_t index = 0;
};

class Reconstructor {
 public:
  /// Loads FLAME, both networks and the face detector; errors name the file that failed.
  explicit Reconstructor(ReconstructorOptions options);

  /// The largest face of a photo file. Throws NoFaceFound naming the file when it shows none.
  Reconstruction reconstruct(const std::string& path, const fit::FitCallback& on_step = {}) const;
  /// The same for an image in memory (see preprocess::normalize_image); `source` names it in errors.
  Reconstruction reconstruct(const torch::Tensor& image, const std::string& source = "image",
                             const fit::FitCallback& on_step = {}) const;
  /// Every face of a photo file, largest first, each fitted on its own (empty when the photo shows none).
  std::vector<Reconstruction> reconstruct_all(const std::string& path, const fit::FitCallback& on_step = {}) const;
  /// Several photos of one person: one identity, per-photo expression and pose (the fitter's image-set mode).
  std::vector<Reconstruction> reconstruct_set(const std::vector<std::string>& paths,
                                              const fit::FitCallback& on_step = {}) const;

  /// The stages on their own.
  preprocess::Preprocessed preprocess(const std::string& path) const { return preprocessor_.file(path); }
  predict::Predictions predict(const preprocess::Preprocessed& input) const;
  fit::FitResult fit(const std::vector<fit::FitTarget>& targets, const fit::FitCallback& on_step = {}) const;

  /// Writes one reconstruction into `folder`: the fit outputs (fit/outputs.h), the fit inputs (fit_inputs.h) and
  /// report.json (timings, final loss, source). Atomic file by file.
  void write(const std::string& folder, const Reconstruction& r, double seconds = 0.0) const;

  const ReconstructorOptions& options() const { return options_; }
  const fit::Fitter& fitter() const { return fitter_; }
  const predict::Predictor& predictor() const { return predictor_; }
  const preprocess::Preprocessor& preprocessor() const { return preprocessor_; }
  const identity::IdentityPrior& identity_prior() const { return identity_; }

 private:
  /// The stages after preprocessing, for one face fitted on its own.
  Reconstruction predict_and_fit(preprocess::Preprocessed input, const fit::FitCallback& on_step) const;

  ReconstructorOptions options_;
  preprocess::Preprocessor preprocessor_;
  predict::Predictor predictor_;
  fit::Fitter fitter_;
  identity::IdentityPrior identity_;
};

/// The FLAME model named by a path, or the synthetic FLAME-layout model for an empty one.
flame::FlameModel load_flame_or_synthetic(const std::string& path);

}  // namespace pixel3dmm::reconstruct
