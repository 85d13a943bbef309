#include "pixel3dmm/reconstruct/reconstructor.h"

#include <chrono>
#include <filesystem>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"

namespace pixel3dmm::reconstruct {
namespace {

predict::Predictor load_predictor(const ReconstructorOptions& o) {
  PIXEL3DMM_CHECK(!o.uv_weights.empty() && !o.normal_weights.empty(),
                  "reconstruction needs both networks: give the converted UV and normal weights (.safetensors; "
                  "convert the official uv.ckpt / normals.ckpt with `python -m pixel3dmm.convert_checkpoint`)");
  return predict::Predictor::load(o.uv_weights, o.normal_weights, o.predict);
}

}  // namespace

flame::FlameModel load_flame_or_synthetic(const std::string& path) {
  return path.empty() ? synth::synthetic_flame() : flame::FlameModel::load(path);
}

Reconstructor::Reconstructor(ReconstructorOptions options)
    : options_(std::move(options)),
      preprocessor_(options_.preprocess),
      predictor_(load_predictor(options_)),
      fitter_(flame::Flame(load_flame_or_synthetic(options_.flame), flame::FlameOptions()), options_.fit),
      identity_(options_.identity) {}

predict::Predictions Reconstructor::predict(const preprocess::Preprocessed& input) const {
  return predictor_.predict(input.crop);
}

fit::FitResult Reconstructor::fit(const std::vector<fit::FitTarget>& targets, const fit::FitCallback& on_step) const {
  return fitter_.fit(targets, on_step);
}

Reconstruction Reconstructor::predict_and_fit(preprocess::Preprocessed input, const fit::FitCallback& on_step) const {
  Reconstruction r;
  r.input = std::move(input);
  r.predictions = predict(r.input);
  r.target = make_target(r.input, r.predictions);
  r.target.identity = identity_.code(r.input.crop, r.input.landmarks, r.input.source);
  r.result = fitter_.fit(r.target, on_step);
  return r;
}

Reconstruction Reconstructor::reconstruct(const std::string& path, const fit::FitCallback& on_step) const {
  return predict_and_fit(preprocessor_.file(path), on_step);
}

Reconstruction Reconstructor::reconstruct(const torch::Tensor& image, const std::string& source,
                                          const fit::FitCallback& on_step) const {
  return predict_and_fit(preprocessor_.image(image, source), on_step);
}

std::vector<Reconstruction> Reconstructor::reconstruct_all(const std::string& path,
                                                           const fit::FitCallback& on_step) const {
  std::vector<Reconstruction> out;
  for (auto& input : preprocessor_.file_all(path)) out.push_back(predict_and_fit(std::move(input), on_step));
  return out;
}

std::vector<Reconstruction> Reconstructor::reconstruct_set(const std::vector<std::string>& paths,
                                                           const fit::FitCallback& on_step) const {
  PIXEL3DMM_CHECK(!paths.empty(), "reconstruct_set: no images");
  std::vector<Reconstruction> out(paths.size());
  std::vector<fit::FitTarget> targets;
  // Crop "official": one static crop over the set (same-size photos), as the official preprocessing crops a
  // sequence.
  std::vector<preprocess::Preprocessed> inputs;
  if (preprocessor_.options().crop == "official") inputs = preprocessor_.files_official_sequence(paths);
  // MICA on every max(1, N / 10)-th photo, as the official preprocessing picks a sequence's identity frames.
  for (size_t i = 0; i < paths.size(); ++i) {
    out[i].input = inputs.empty() ? preprocessor_.file(paths[i]) : std::move(inputs[i]);
    out[i].predictions = predict(out[i].input);
    out[i].target = make_target(out[i].input, out[i].predictions);
    out[i].index = static_cast<int64_t>(i);
    if (identity::is_identity_frame(static_cast<int64_t>(i), static_cast<int64_t>(paths.size())))
      out[i].target.identity = identity_.code(out[i].input.crop, out[i].input.landmarks, out[i].input.source);
    targets.push_back(out[i].target);
  }
  const fit::FitResult joint = fitter_.fit(targets, on_step);
  for (auto& r : out) r.result = joint;
  return out;
}

void Reconstructor::write(const std::string& folder, const Reconstruction& r, double seconds) const {
  fit::write_fit_outputs(folder, fitter_, r.result, r.target, r.index);
  write_fit_inputs(folder, r.input, r.predictions);
  io::json report = {{"source", r.input.source},
                     {"face_score", r.input.score},
                     {"mask_method", r.input.mask_method},
                     {"crop_method", r.input.crop_method},
                     {"landmark_method", r.input.landmark_method},
                     {"images_in_fit", r.result.vertices.size(0)},
                     {"index_in_fit", r.index},
                     {"iterations", r.result.iterations},
                     {"fit_seconds", r.result.seconds},
                     {"total_seconds", seconds},
                     {"final_loss", r.result.log.empty() ? 0.0 : r.result.log.back().total},
                     {"identity_prior", r.result.identity_prior.defined() ? identity_.describe() : "none"},
                     {"flame", options_.flame.empty() ? "synthetic FLAME-layout model" : options_.flame},
                     {"uv_weights", options_.uv_weights},
                     {"normal_weights", options_.normal_weights}};
  io::write_json((std::filesystem::path(folder) / "report.json").string(), report);
}

}  // namespace pixel3dmm::reconstruct
