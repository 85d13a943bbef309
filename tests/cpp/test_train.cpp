#include <filesystem>
#include <set>
#include <fstream>

#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/predict/predictor.h"
#include "pixel3dmm/train/checkpoint.h"
#include "pixel3dmm/train/trainer.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::train;

namespace {

/// A network small enough to train in a second: 32 px input, 2 x 2 tokens, one block each.
nn::NetworkConfig tiny_config(nn::PredictionType type) {
  nn::NetworkConfig c;
  c.prediction_type = type;
  c.image_size = 32;
  c.backbone_name = "tiny";
  c.backbone = nn::VisionTransformerOptions().patch_size(16).embed_dim(32).depth(1).num_heads(2).img_size(32);
  c.head = nn::PredictionHeadOptions().in_dim(32).n_views(1).embedding_dim(16).num_layers(1).num_heads(2)
               .pred_dim(nn::prediction_channels(type));
  return c;
}

/// Synthetic heads with exact targets; the "photo" is a shading of the normals, so the task is learnable.
std::vector<TrainingSample> tiny_samples(int64_t count, uint64_t seed = 0) {
  static const fit::Fitter fitter = [] {
    fit::FitConfig config;
    config.n_shape = 10;
    config.n_expr = 5;
    auto model = synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1200).n_shape(10).n_expr(5));
    return fit::Fitter(flame::Flame(std::move(model), flame::FlameOptions()), config);
  }();
  std::vector<TrainingSample> out;
  for (int64_t i = 0; i < count; ++i) {
    const auto truth = synth::random_params(1, 10, 5, seed + static_cast<uint64_t>(i));
    synth::SyntheticTargetOptions so;
    so.size = 48;
    so.uv_noise = so.normal_noise = so.outlier_fraction = so.landmark_noise = 0;
    const auto st = synth::render_synthetic_target(fitter, truth, 0, so);
    TrainingSample s;
    s.id = "head" + std::to_string(i);
    s.mask = st.target.normal_mask.to(torch::kFloat32);
    s.uv = st.target.uv[0];
    s.normals = st.target.normals[0];
    s.image = ((s.normals + 1) / 2 * s.mask + 0.2 * (1 - s.mask)).clamp(0, 1);
    out.push_back(s);
  }
  return out;
}

TrainerOptions quick_options(int64_t steps) {
  TrainerOptions o;
  o.steps = steps;
  o.batch_size = 4;
  o.lr = 5e-3;
  o.lr_backbone = 1e-3;
  o.finetune_backbone = true;
  o.warmup_steps = 2;
  o.log_every = 1;
  o.checkpoint_every = 0;
  o.seed = 7;
  return o;
}

struct StopAtCheckpoint {};

}  // namespace

TEST_CASE("train: the learning rate follows the official CosineWarmupScheduler", "[train]") {
  REQUIRE(learning_rate_factor(0, 200, 1000) == Approx(1.0 / 200));
  REQUIRE(learning_rate_factor(199, 200, 1000) == Approx(1.0));
  REQUIRE(learning_rate_factor(200, 200, 1000) == Approx((1 + std::cos(M_PI / 800)) / 2));
  REQUIRE(learning_rate_factor(599, 200, 1000) == Approx(0.5).margin(1e-12));
  REQUIRE(learning_rate_factor(999, 200, 1000) == Approx(0.0).margin(1e-12));
}

TEST_CASE("train: targets in raw units invert the predictor's conversions", "[train]") {
  const auto samples = tiny_samples(1);
  const auto& s = samples[0];
  test::require_close(predict::uv_from_raw(target_to_raw(s.uv, nn::PredictionType::UV).unsqueeze(0))[0], s.uv, 1e-6);
  const auto fg = s.mask.expand({3, -1, -1}) > 0.5;
  const auto back = predict::normals_from_raw(target_to_raw(s.normals, nn::PredictionType::Normals).unsqueeze(0))[0];
  const auto unit = s.normals / s.normals.norm(2, 0, true).clamp_min(1e-8);  // rendered normals are interpolated
  test::require_close(back.masked_select(fg), unit.masked_select(fg), 1e-5);
  test::require_throws_with<ValueError>([&] { target_to_raw(s.normals, nn::PredictionType::UV); },
                                        {"uv_map target has 2 channels"});
}

TEST_CASE("train: mirroring follows the official un-flip rules", "[train]") {
  auto samples = tiny_samples(1);
  const auto config = tiny_config(nn::PredictionType::UV);
  AugmentOptions a;
  a.mirror = true;
  a.color_jitter = a.crop_scale = a.crop_shift = 0;
  const TrainingBatch plain = prepare_sample(samples[0], config, nullptr, 0);
  int mirrored = 0;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    const TrainingBatch b = prepare_sample(samples[0], config, &a, seed);
    if (torch::equal(b.image, plain.image)) continue;
    ++mirrored;
    test::require_close(b.image, plain.image.flip({3}), 0);
    test::require_close(b.mask, plain.mask.flip({3}), 0);
    test::require_close(b.target.select(1, 0), -plain.target.select(1, 0).flip({2}) + 2 * 0.0075, 1e-6);
    test::require_close(b.target.select(1, 1), plain.target.select(1, 1).flip({2}), 0);
  }
  REQUIRE(mirrored > 2);
  REQUIRE(mirrored < 14);
}

TEST_CASE("train: the data loader's order depends only on seed and step", "[train]") {
  const auto source = SampleSource::from(tiny_samples(10));
  DataLoaderOptions o;
  o.batch_size = 4;
  o.seed = 3;
  DataLoader a(source, tiny_config(nn::PredictionType::UV), o, AugmentOptions{});
  REQUIRE(a.steps_per_epoch() == 2);
  // Each epoch draws distinct samples; epochs differ in order.
  std::set<int64_t> epoch0;
  for (int64_t s = 0; s < 2; ++s)
    for (const int64_t i : a.indices(s)) epoch0.insert(i);
  REQUIRE(epoch0.size() == 8);
  REQUIRE(a.indices(0) != a.indices(2));
  // Two processes split the global batch without overlap.
  DataLoaderOptions r0 = o, r1 = o;
  r0.world_size = r1.world_size = 2;
  r1.rank = 1;
  DataLoader b0(source, tiny_config(nn::PredictionType::UV), r0, AugmentOptions{});
  DataLoader b1(source, tiny_config(nn::PredictionType::UV), r1, AugmentOptions{});
  auto joined = b0.indices(1);
  for (const int64_t i : b1.indices(1)) joined.push_back(i);
  std::sort(joined.begin(), joined.end());
  auto all = a.indices(1);
  std::sort(all.begin(), all.end());
  REQUIRE(joined == all);
  // Prefetched batches equal batches computed on the spot, augmentation included.
  a.seek(3);
  const TrainingBatch ahead = a.next(), ahead2 = a.next();
  test::require_close(ahead.image, a.batch(3).image, 0);
  test::require_close(ahead2.target, a.batch(4).target, 0);
  REQUIRE(ahead2.ids == a.batch(4).ids);
}

TEST_CASE("train: validation errors measure a known offset", "[train]") {
  // u = x / T, v-channel = y / T: a UV error of 0.01 in u is 0.01 T pixels.
  const int64_t t = 64;
  const auto ramp = torch::arange(t, torch::kFloat32) / t;
  const auto uv01 = torch::stack({ramp.view({1, t}).expand({t, t}), ramp.view({t, 1}).expand({t, t})}).unsqueeze(0);
  const auto target = uv01 * 2 - 1;
  const auto mask = torch::ones({1, 1, t, t});
  auto shifted = uv01.clone();
  shifted.select(1, 0).add_(0.01);
  const auto sums = uv_error_sums(shifted * 2 - 1, target, mask);
  REQUIRE(sums[0] / sums[1] == Approx(0.01).epsilon(1e-3));
  REQUIRE(sums[2] / sums[3] == Approx(0.64).epsilon(1e-3));
  // Normals rotated by 10 degrees about y.
  const double a = 10.0 * M_PI / 180.0;
  const auto n = torch::tensor({0.0f, 0.0f, 1.0f}).view({1, 3, 1, 1}).expand({1, 3, t, t});
  const auto r = torch::tensor({static_cast<float>(std::sin(a)), 0.0f, static_cast<float>(std::cos(a))})
                     .view({1, 3, 1, 1}).expand({1, 3, t, t}) * 3.0;  // unnormalised on purpose
  const auto ns = normal_error_sums(r, n, mask);
  REQUIRE(ns[0] / ns[1] == Approx(10.0).epsilon(1e-3));
}

TEST_CASE("train: the loss decreases on a tiny synthetic dataset", "[train]") {
  for (const auto type : {nn::PredictionType::UV, nn::PredictionType::Normals}) {
    test::TempDir dir;
    const auto source = SampleSource::from(tiny_samples(8));
    Trainer trainer(Trainer::initial_network(tiny_config(type), 1), quick_options(60), dir.path.string());
    const ValidationMetrics before = trainer.validate(source);
    const ValidationMetrics after = trainer.train(source, source);
    INFO(nn::to_string(type) << ": loss " << before.loss << " -> " << after.loss);
    REQUIRE(after.loss < 0.7 * before.loss);
    if (type == nn::PredictionType::UV)
      REQUIRE(after.uv_error < before.uv_error);
    else
      REQUIRE(after.normal_error_deg < before.normal_error_deg);
    // The run folder holds what docs/training.md promises, and the model loads for prediction.
    for (const char* f : {"config.json", "log.csv", "val.csv", "loss.png", "model.safetensors", "model.json"})
      REQUIRE(std::filesystem::exists(dir.path / f));
    REQUIRE(latest_checkpoint(dir.path.string()).has_value());
    auto loaded = nn::load_network(dir.file("model.safetensors"));
    torch::NoGradGuard ng;
    const auto x = torch::rand({1, 3, 32, 32});
    auto net = trainer.network();
    net->eval();
    test::require_close(loaded->forward(x), net->forward(x), 1e-6);
  }
}

TEST_CASE("train: a resumed run equals an uninterrupted run", "[train]") {
  const auto source = SampleSource::from(tiny_samples(8));
  auto options = quick_options(6);
  options.checkpoint_every = 3;
  options.augment.mirror = true;
  options.augment.uv_mirror_offset = 0.0;
  test::TempDir whole, parts;
  Trainer uninterrupted(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 1), options,
                        whole.path.string());
  uninterrupted.train(source, SampleSource{});

  {
    Trainer first(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 1), options, parts.path.string());
    TrainCallbacks stop;
    stop.on_checkpoint = [](const std::string&) { throw StopAtCheckpoint{}; };
    REQUIRE_THROWS_AS(first.train(source, SampleSource{}, stop), StopAtCheckpoint);
    REQUIRE(first.step() == 3);
  }
  // A fresh process would start from other random weights: the checkpoint must replace them all.
  Trainer second(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 99), options, parts.path.string());
  REQUIRE(second.resume());
  REQUIRE(second.step() == 3);
  second.train(source, SampleSource{});

  const auto a = uninterrupted.network()->named_parameters(), b = second.network()->named_parameters();
  for (const auto& item : a) test::require_close(item.value(), b[item.key()], 1e-6);
  // The logs read as one run.
  const auto rows = [](const test::TempDir& d) {
    std::ifstream in(d.file("log.csv"));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l.substr(0, l.find(',', l.find(',', l.find(',') + 1) + 1)));
    return lines;
  };
  REQUIRE(rows(whole) == rows(parts));
}

TEST_CASE("train: a checkpoint that does not match the network is refused by name", "[train]") {
  test::TempDir dir;
  const auto source = SampleSource::from(tiny_samples(4));
  auto options = quick_options(2);
  options.warmup_steps = 1;
  Trainer trainer(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 1), options, dir.path.string());
  trainer.train(source, SampleSource{});
  const auto ck = *latest_checkpoint(dir.path.string());
  auto other_config = tiny_config(nn::PredictionType::UV);
  other_config.head.embedding_dim(24);
  test::TempDir other_dir;
  Trainer other(Trainer::initial_network(other_config, 1), options, other_dir.path.string());
  test::require_throws_with<FormatError>([&] { other.resume_from(ck); }, {"model.safetensors", "down_proj.weight"});
  // Moments of the wrong shape name the tensor.
  auto moments = io::read_safetensors(ck + "/optimizer.safetensors").tensors;
  moments["head.token_2_patch_content.weight.exp_avg"] = torch::zeros({3, 3});
  io::write_safetensors(ck + "/optimizer.safetensors", moments);
  Trainer again(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 1), options, dir.path.string());
  test::require_throws_with<FormatError>([&] { again.resume_from(ck); },
                                         {"optimizer.safetensors", "head.token_2_patch_content.weight.exp_avg"});
  // Only the newest keep_checkpoints survive.
  test::TempDir pruned;
  auto keep = quick_options(4);
  keep.warmup_steps = 1;
  keep.checkpoint_every = 1;
  keep.keep_checkpoints = 2;
  Trainer kept(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 1), keep, pruned.path.string());
  kept.train(source, SampleSource{});
  const auto left = list_checkpoints(pruned.path.string());
  REQUIRE(left.size() == 2);
  REQUIRE(left.back() == checkpoint_path(pruned.path.string(), 4));
  REQUIRE(left.front() == checkpoint_path(pruned.path.string(), 3));

  TrainerOptions bad;
  bad.warmup_steps = bad.steps;
  test::require_throws_with<ValueError>([&] { bad.validate(); }, {"warmup_steps"});
}

TEST_CASE("train: a non-finite loss stops naming the step; the last checkpoint holds finite weights",
          "[train][reliability]") {
  test::TempDir dir;
  const auto source = SampleSource::from(tiny_samples(4));
  auto options = quick_options(6);
  options.lr = options.lr_backbone = 1e30;  // the first update blows the weights up; the next loss overflows
  options.warmup_steps = 0;
  options.checkpoint_every = 1;
  Trainer trainer(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 1), options, dir.path.string());
  std::string message;
  try {
    trainer.train(source, SampleSource{});
  } catch (const Error& e) {
    message = e.what();
  }
  INFO("message: " << message);
  REQUIRE(message.find("training: the") != std::string::npos);
  REQUIRE(message.find(" at step ") != std::string::npos);
  REQUIRE(message.find("the last checkpoint holds the last good state") != std::string::npos);
  const int64_t failed_step = std::stoll(message.substr(message.find(" at step ") + 9));
  REQUIRE(failed_step >= 2);
  // Resuming loads the checkpoint written after the step before: every weight finite.
  Trainer resumed(Trainer::initial_network(tiny_config(nn::PredictionType::UV), 2), options, dir.path.string());
  REQUIRE(resumed.resume());
  REQUIRE(resumed.step() == failed_step - 1);
  for (const auto& p : resumed.network()->parameters()) REQUIRE(torch::isfinite(p).all().item<bool>());
}
