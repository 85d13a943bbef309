#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/predict/demo_model.h"
#include "pixel3dmm/train/augment.h"
#include "pixel3dmm/synth/synthetic_dataset.h"
#include "pixel3dmm/train/trainer.h"
#include "test_util.h"

using namespace pixel3dmm;

TEST_CASE("demo model: the embedded networks load and predict synthetic photos", "[predict][demo]") {
  const auto uv = predict::demo_network(nn::PredictionType::UV);
  const auto normals = predict::demo_network(nn::PredictionType::Normals);
  REQUIRE(uv->config.prediction_type == nn::PredictionType::UV);
  REQUIRE(normals->config.prediction_type == nn::PredictionType::Normals);
  REQUIRE(uv->config.image_size == 128);
  REQUIRE_FALSE(uv->is_training());

  const predict::Predictor predictor = predict::demo_predictor();
  REQUIRE_FALSE(predictor.options().mirror);

  // Held-out photos (the training data used seeds 0 and 2000): the networks must beat a constant guess clearly.
  const fit::Fitter fitter(flame::Flame(synth::synthetic_flame(), flame::FlameOptions()), fit::FitConfig{});
  synth::SyntheticPhotoOptions po;
  po.size = 128;
  double uv_sum = 0, uv_pixels = 0, normal_sum = 0, normal_pixels = 0, const_sum = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const auto photo = synth::render_synthetic_photo(fitter, 777, i, po);
    const auto p = predictor.predict(photo.image.unsqueeze(0));
    REQUIRE(p.uv.sizes() == torch::IntArrayRef({1, 2, 128, 128}));
    const auto mask = photo.mask.unsqueeze(0);
    const auto uv_raw = train::target_to_raw(photo.uv, nn::PredictionType::UV).unsqueeze(0);
    const auto u = train::uv_error_sums(p.uv_raw, uv_raw, mask);
    uv_sum += u[0];
    uv_pixels += u[1];
    // A constant guess: the mean true UV over the mask.
    const auto fg = mask > 0.5;
    const auto mean = torch::stack({photo.uv[0].masked_select(fg[0][0]).mean(),
                                    photo.uv[1].masked_select(fg[0][0]).mean()})
                          .view({1, 2, 1, 1})
                          .expand_as(uv_raw);
    const_sum += train::uv_error_sums(mean * 2 - 1, uv_raw, mask)[0];
    const auto n = train::normal_error_sums(
        p.normals_raw, train::target_to_raw(photo.normals, nn::PredictionType::Normals).unsqueeze(0), mask);
    normal_sum += n[0];
    normal_pixels += n[1];
  }
  const double uv_error = uv_sum / uv_pixels, constant = const_sum / uv_pixels, angle = normal_sum / normal_pixels;
  INFO("demo UV error " << uv_error << " (constant guess " << constant << "), normal error " << angle << " deg");
  REQUIRE(uv_error < 0.6 * constant);
  REQUIRE(angle < 35.0);
}
