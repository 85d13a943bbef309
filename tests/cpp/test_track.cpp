#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "pixel3dmm/eval/vertex_error.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/predict/demo_model.h"
#include "pixel3dmm/preprocess/face_detector.h"
#include "pixel3dmm/preprocess/preprocess.h"
#include "pixel3dmm/track/frame_source.h"
#include "pixel3dmm/track/outputs.h"
#include "pixel3dmm/track/synthetic_evaluation.h"
#include "pixel3dmm/track/tracker.h"
#include "test_photos.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::track;
using namespace pixel3dmm::synth;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

flame::Flame small_flame() {
  return flame::Flame(synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1200).n_shape(10).n_expr(10)),
                      flame::FlameOptions());
}

/// Seconds-scale settings: 64 px, short schedules, mini-batches of 4.
TrackerOptions small_options() {
  TrackerOptions o;
  o.fit.image_size = 64;
  o.fit.n_shape = 10;
  o.fit.n_expr = 10;
  o.fit.camera.steps = 60;
  o.fit.camera.landmark_steps = 30;
  o.fit.loss.dist_uv = 20.0 * 64 / 256;
  o.online.iters = 40;
  o.online.early_stopping_delta = 0.5;
  o.global.iters = 24;
  o.global.batch_size = 4;
  o.global.checkpoint_every = 5;
  return o;
}

SyntheticVideo small_video(const fit::Fitter& fitter, int64_t frames, uint64_t seed = 3) {
  SyntheticVideoOptions v;
  v.frames = frames;
  v.key_every = 4;
  v.seed = seed;
  v.maps.size = 64;
  v.maps.outlier_fraction = 0.0;
  v.pose.shape_std = 0.3;
  v.pose.expr_std = 0.3;
  v.pose.yaw_deg = 12;
  return make_synthetic_video(fitter, v);
}

void require_same_params(const fit::FitParams& a, const fit::FitParams& b, double tol) {
  const auto na = a.named(), nb = b.named();
  for (const auto& [name, t] : na) {
    INFO("parameter " << name);
    require_close(t, nb.at(name), tol);
  }
}

}  // namespace

TEST_CASE("smoothness terms: mean squared consecutive differences times the official weights", "[track]") {
  fit::FitParams p = fit::FitParams::initial(3, 2, 2, 4.0);
  p.expression = torch::tensor({0.f, 0.f, 1.f, 0.f, 3.f, 0.f}).view({3, 2});
  p.translation = torch::tensor({0.f, 0.f, 0.f, 0.f, 0.f, 0.1f, 0.f, 0.f, 0.1f}).view({3, 3});
  SmoothnessWeights w;
  const auto terms = smoothness_terms(p, w);
  // exp: differences (1, 0), (2, 0) -> squares 1, 0, 4, 0 -> mean 1.25, times 50.
  REQUIRE(terms.at("smooth/exp").item<double>() == Approx(1.25 * 50));
  // t: (0, 0, 0.1), (0, 0, 0) -> mean 0.01 / 6, times 15200.
  REQUIRE(terms.at("smooth/t").item<double>() == Approx(0.01 / 6 * 15200).epsilon(1e-5));
  REQUIRE(terms.at("smooth/R").item<double>() == 0.0);  // identical rotations
  w.multiplier = 2.0;
  REQUIRE(smoothness_terms(p, w).at("smooth/exp").item<double>() == Approx(2 * 1.25 * 50));
  REQUIRE(smoothness_terms(fit::FitParams::initial(1, 2, 2, 4.0), w).empty());
}

TEST_CASE("lazy Adam moves only the selected rows and leaves the others' moments alone", "[track]") {
  torch::Tensor table = torch::zeros({4, 2});
  LazyAdamState st;
  lazy_adam_step(table, torch::tensor({1, 3}, torch::kLong), torch::ones({2, 2}), st, 0.1);
  // Adam's first step moves by lr against the gradient's sign.
  require_close(table[1], torch::full({2}, -0.1f), 1e-6);
  require_close(table[3], torch::full({2}, -0.1f), 1e-6);
  REQUIRE(table[0].abs().sum().item<double>() == 0.0);
  const auto m_row1 = st.exp_avg[1].clone();
  // A step on row 0 only: rows 1 and 3 stay (dense Adam would move them by their momentum) and keep their moments.
  lazy_adam_step(table, torch::tensor({0}, torch::kLong), torch::ones({1, 2}), st, 0.1);
  require_close(table[1], torch::full({2}, -0.1f), 1e-6);
  require_close(st.exp_avg[1], m_row1, 0.0);
  REQUIRE(st.step == 2);
  REQUIRE(table[0][0].item<double>() < 0.0);
  REQUIRE(table[2].abs().sum().item<double>() == 0.0);

  // With every row selected it is torch's Adam.
  torch::manual_seed(1);
  torch::Tensor a = torch::randn({3, 2}), b = a.clone().requires_grad_(true);
  torch::optim::Adam adam({b}, torch::optim::AdamOptions(0.05));
  LazyAdamState sa;
  for (int k = 0; k < 4; ++k) {
    const auto g = torch::randn({3, 2});
    lazy_adam_step(a, torch::arange(3, torch::kLong), g, sa, 0.05);
    adam.zero_grad();
    b.mutable_grad() = g.clone();
    adam.step();
  }
  require_close(a, b.detach(), 1e-6);
}

TEST_CASE("global-stage frame selection: windows, random subsets, deterministic per step", "[track]") {
  const auto w = select_frames(20, 6, false, 42, 3);
  REQUIRE(w.numel() == 6);
  for (int i = 1; i < 6; ++i) REQUIRE(w[i].item<int64_t>() == w[i - 1].item<int64_t>() + 1);
  REQUIRE(w[5].item<int64_t>() < 20);
  const auto r = select_frames(20, 6, true, 42, 4);
  REQUIRE(std::get<0>(at::_unique(r)).numel() == 6);
  for (int i = 1; i < 6; ++i) REQUIRE(r[i].item<int64_t>() > r[i - 1].item<int64_t>());
  REQUIRE(torch::equal(r, select_frames(20, 6, true, 42, 4)));
  bool differs = false;
  for (int s = 5; s < 15; ++s) differs |= !torch::equal(r, select_frames(20, 6, true, 42, s));
  REQUIRE(differs);
  REQUIRE(select_frames(6, 6, false, 1, 0).equal(torch::arange(6, torch::kLong)));
}

TEST_CASE("online early stopping ends a frame once the loss settles", "[track]") {
  TrackerOptions o = small_options();
  const Tracker tracker(small_flame(), o);
  const SyntheticVideo v = small_video(tracker.fitter(), 1);
  const auto data = tracker.fitter().prepare(v.frames);
  const fit::FitParams start = fit::FitParams::initial(1, 10, 10, o.fit.focal_init);
  fit::FitStages st;
  st.camera = false;
  st.iters = 30;
  st.early_stopping_delta = 1e12;  // every change is "small": stops as soon as the rule allows (p > 10)
  REQUIRE(tracker.fitter().fit_stages(data, start, st).iterations == 12);
  st.early_stopping_delta = 1e-12;  // never small enough
  REQUIRE(tracker.fitter().fit_stages(data, start, st).iterations == 30);
  st.early_stopping_delta = 0.0;  // off
  REQUIRE(tracker.fitter().fit_stages(data, start, st).iterations == 30);
}

TEST_CASE("frame source reads image folders in name order and refuses bad inputs", "[track]") {
  TempDir dir;
  for (int i : {2, 0, 1}) {
    const auto img = torch::full({1, 3, 8, 10}, 0.25 * i);
    io::write_image(dir.file("frame_" + std::to_string(i) + ".png"), img);
  }
  std::ofstream(dir.file("notes.txt")) << "not an image";
  FrameSource src(dir.path.string());
  torch::Tensor f;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(src.next(f));
    REQUIRE(f.sizes() == torch::IntArrayRef({1, 3, 8, 10}));
    REQUIRE(f.mean().item<double>() == Approx(0.25 * i).margin(0.01));
  }
  REQUIRE_FALSE(src.next(f));
  REQUIRE(src.count() == 3);
  FrameSource every(dir.path.string(), 2);
  int n = 0;
  while (every.next(f)) ++n;
  REQUIRE(n == 2);

  require_throws_with<FileNotFound>([&] { FrameSource(dir.file("missing.mp4")); }, {"missing.mp4"});
  TempDir empty;
  require_throws_with<ValueError>([&] { FrameSource(empty.path.string()); }, {"no images"});
  require_throws_with<ValueError>([&] { FrameSource(dir.file("notes.txt")); }, {"notes.txt", "video"});
}

TEST_CASE("frame source reads a video file OpenCV wrote", "[track]") {
  TempDir dir;
  const std::string path = dir.file("clip.avi");
  {
    cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(32, 24));
    if (!w.isOpened()) {
      WARN("OpenCV has no MJPG writer here: video reading not tested");
      return;
    }
    for (int i = 0; i < 5; ++i) w.write(cv::Mat(24, 32, CV_8UC3, cv::Scalar(40 * i, 40 * i, 40 * i)));
  }
  FrameSource src(path);
  REQUIRE(src.is_video());
  REQUIRE(src.fps() == Approx(10.0));
  torch::Tensor f;
  int n = 0;
  while (src.next(f)) {
    REQUIRE(f.sizes() == torch::IntArrayRef({1, 3, 24, 32}));
    REQUIRE(f.mean().item<double>() == Approx(40.0 * n / 255).margin(0.03));
    ++n;
  }
  REQUIRE(n == 5);
}

TEST_CASE("the real-video front end detects, smooths the crops, fills a frame without a face and predicts",
          "[track][photos]") {
  const std::string photo = test::kDlibFaces + "Tom_Cruise_avp_2014_4.jpg";
  if (!test::have_dlib_photos(photo)) return;
  // A shaking camera: the photo shifted sideways per frame, and one frame (3) that shows no face.
  const auto image = io::read_image(photo);
  const std::vector<int64_t> shift = {0, 6, -4, 0, 5, 0};
  TempDir dir;
  for (size_t i = 0; i < shift.size(); ++i) {
    const auto frame = i == 3 ? torch::full_like(image, 0.5) : torch::roll(image, {shift[i]}, {3});
    io::write_image(dir.file("f" + std::to_string(i) + ".png"), frame);
  }
  preprocess::PreprocessOptions po;
  po.mask_method = "landmarks";
  const preprocess::Preprocessor preprocessor(po);
  FrontEndOptions fo;
  fo.smooth_radius = 2;
  fo.map_size = 64;
  std::vector<std::string> stages;
  const auto vt = load_video_targets(dir.path.string(), preprocessor, predict::demo_predictor(), fo,
                                     [&](const std::string& stage, int64_t) { stages.push_back(stage); });
  REQUIRE(vt.frames.size() == shift.size());
  REQUIRE(vt.detected == std::vector<bool>{true, true, true, false, true, true});
  REQUIRE(std::count(stages.begin(), stages.end(), "detect") > 0);
  REQUIRE(std::count(stages.begin(), stages.end(), "predict") > 0);
  // the detections follow the shake; the smoothed crops shake less
  auto spread = [&](const std::vector<preprocess::CropBox>& boxes) {
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < boxes.size(); ++i)
      if (vt.detected[i]) lo = std::min(lo, boxes[i].x0 - shift[i]), hi = std::max(hi, boxes[i].x0 - shift[i]);
    return hi - lo;
  };
  int64_t raw_lo = INT64_MAX, raw_hi = INT64_MIN, smooth_lo = INT64_MAX, smooth_hi = INT64_MIN;
  for (size_t i = 0; i < shift.size(); ++i) {
    if (!vt.detected[i]) continue;
    raw_lo = std::min(raw_lo, vt.detected_boxes[i].x0), raw_hi = std::max(raw_hi, vt.detected_boxes[i].x0);
    smooth_lo = std::min(smooth_lo, vt.boxes[i].x0), smooth_hi = std::max(smooth_hi, vt.boxes[i].x0);
  }
  INFO("crop side " << vt.detected_boxes[0].side);
  CHECK(spread(vt.detected_boxes) <= vt.detected_boxes[0].side / 20);  // each detection moved with its frame
  CHECK(smooth_hi - smooth_lo < raw_hi - raw_lo);
  for (const auto& t : vt.frames) {
    REQUIRE(t.uv.sizes() == torch::IntArrayRef({1, 2, 64, 64}));
    REQUIRE(t.normals.sizes() == torch::IntArrayRef({1, 3, 64, 64}));
    REQUIRE(torch::isfinite(t.uv).all().item<bool>());
    REQUIRE(t.uv_mask.sum().item<double>() > 100);
    REQUIRE(t.landmarks.sizes() == torch::IntArrayRef({1, 68, 2}));
    REQUIRE(t.landmarks.min().item<double>() > 0);
    REQUIRE(t.landmarks.max().item<double>() < 64);
  }
  // frame 3 borrowed the landmarks of a neighbour, placed by its own (smoothed) crop
  REQUIRE(vt.boxes[3].side > 0);
}

TEST_CASE("the real-video front end reads one official seg_og label PNG per source frame", "[track][photos][masks]") {
  const std::string photo = test::kDlibFaces + "Tom_Cruise_avp_2014_4.jpg";
  if (!test::have_dlib_photos(photo)) return;
  const auto image = io::read_image(photo);
  const int64_t H = image.size(2), W = image.size(3);
  TempDir frames, seg;
  for (int i = 0; i < 4; ++i) io::write_image(frames.file("f" + std::to_string(i) + ".png"), image);
  // Every 2nd frame is kept: kept frames 0 and 1 read source files 00000.png (all skin) and 00002.png (all
  // background); 00001.png does not exist, so reading by kept index would fail.
  const auto write_labels = [&](const std::string& name, int label) {
    cv::Mat m(static_cast<int>(H), static_cast<int>(W), CV_8U, cv::Scalar(label));
    REQUIRE(cv::imwrite(seg.file(name), m));
  };
  write_labels("00000.png", 2);
  write_labels("00002.png", 0);
  preprocess::PreprocessOptions po;
  po.segmentation = seg.path.string();  // mask_method "auto" -> segmentation
  const preprocess::Preprocessor preprocessor(po);
  FrontEndOptions fo;
  fo.every = 2;
  fo.smooth_radius = 0;
  fo.map_size = 64;
  const auto vt = load_video_targets(frames.path.string(), preprocessor, predict::demo_predictor(), fo);
  REQUIRE(vt.frames.size() == 2);
  const auto& skin = vt.frames[0];
  const auto& bg = vt.frames[1];
  // Skin is in uv, normal and fg masks and never background; crop pixels outside the photo (label 20) in none.
  CHECK(torch::equal(skin.uv_mask, skin.fg_mask));
  CHECK(skin.uv_mask.sum().item<double>() > 0.5 * 64 * 64);
  CHECK(skin.valid_bg.sum().item<double>() == 0.0);
  CHECK(bg.uv_mask.sum().item<double>() == 0.0);
  CHECK(torch::equal(bg.valid_bg, skin.uv_mask));  // same crop, same photo pixels
  // A folder that is not there, and a frame without its file, are named.
  po.segmentation = seg.file("none");
  require_throws_with<FileNotFound>(
      [&] { load_video_targets(frames.path.string(), preprocess::Preprocessor(po), predict::demo_predictor(), fo); },
      {seg.file("none"), "seg_og"});
  po.segmentation = seg.path.string();
  fo.every = 1;
  require_throws_with<FileNotFound>(
      [&] { load_video_targets(frames.path.string(), preprocess::Preprocessor(po), predict::demo_predictor(), fo); },
      {"00001.png"});
}

TEST_CASE("smooth_boxes removes an outlier detection and follows steady motion", "[track]") {
  std::vector<preprocess::CropBox> boxes;
  for (int i = 0; i < 9; ++i) boxes.push_back({100 + 2 * i, 50, 200});
  boxes[4] = {160, 90, 260};  // one bad detection
  const auto s = smooth_boxes(boxes, 2);
  REQUIRE(s.size() == boxes.size());
  REQUIRE(s[4].side == 200);
  REQUIRE(s[4].y0 == 50);
  REQUIRE(s[4].x0 == Approx(108).margin(2));
  REQUIRE(s[0].x0 == Approx(102).margin(2));
  REQUIRE(smooth_boxes(boxes, 0)[4].side == 260);
}

TEST_CASE("smooth_face_boxes removes an outlier FaceBoxes box and keeps integer boxes and scores", "[track]") {
  std::vector<preprocess::FaceBox> boxes;
  for (int i = 0; i < 9; ++i) boxes.push_back({0.9f + 0.01f * i, 100 + 2 * i, 50, 200, 240});
  boxes[4] = {0.8f, 160, 90, 260, 300};  // one bad detection
  const auto s = smooth_face_boxes(boxes, 2);
  REQUIRE(s.size() == boxes.size());
  REQUIRE(s[4].width == 200);
  REQUIRE(s[4].height == 240);
  REQUIRE(s[4].y == 50);
  REQUIRE(s[4].x == 110);  // centres of frames 2..6: 204, 206, (290), 210, 212 -> median 210, minus half of 200
  REQUIRE(s[4].score == 0.8f);
  const auto same = smooth_face_boxes(boxes, 0);
  REQUIRE(same[4].x == 160);
  REQUIRE(same[4].width == 260);
}

TEST_CASE("an interrupted tracking run resumes to the uninterrupted result", "[track]") {
  const TrackerOptions o = small_options();
  const Tracker tracker(small_flame(), o);
  const SyntheticVideo v = small_video(tracker.fitter(), 6);

  TempDir a, b;
  const TrackResult full = tracker.track(v.frames, a.path.string());
  REQUIRE(full.complete);
  REQUIRE(full.global_loss.size() == 24);
  REQUIRE(full.vertices.size(0) == 6);

  // Stop after two online frames, then during the global stage (step 8: the last state is from step 5).
  int calls = 0;
  const TrackResult part1 = tracker.track(v.frames, b.path.string(), [&](const TrackProgress& p) {
    ++calls;
    return !(p.stage == "online" && p.done == 2);
  });
  REQUIRE_FALSE(part1.complete);
  REQUIRE(calls == 2);
  REQUIRE(std::filesystem::exists(b.file("online/00001.safetensors")));
  REQUIRE_FALSE(std::filesystem::exists(b.file("online/00002.safetensors")));
  std::vector<int> fresh;
  const TrackResult part2 = tracker.track(v.frames, b.path.string(), [&](const TrackProgress& p) {
    if (p.stage == "online") fresh.push_back(p.steps);
    return !(p.stage == "global" && p.done == 8);
  });
  REQUIRE_FALSE(part2.complete);
  REQUIRE(fresh.size() == 6);
  REQUIRE(fresh[0] == 0);  // resumed frames report no steps
  REQUIRE(fresh[1] == 0);
  REQUIRE(fresh[2] > 0);
  REQUIRE(io::read_safetensors(b.file("global.safetensors")).metadata.at("step") == "5");
  const TrackResult done = tracker.track(v.frames, b.path.string());
  REQUIRE(done.complete);
  REQUIRE(done.global_loss.size() == 24);
  require_same_params(done.online_params, full.online_params, 1e-5);
  require_same_params(done.params, full.params, 1e-5);
  require_close(done.vertices, full.vertices, 1e-5);
  // The global stage changed something, and every frame took part.
  REQUIRE((full.params.expression - full.online_params.expression).abs().max().item<double>() > 0);

  // A state folder of other options is refused.
  TrackerOptions other = o;
  other.global.iters = 25;
  require_throws_with<ValueError>([&] { Tracker(small_flame(), other).track(v.frames, b.path.string()); },
                                  {"options.json", "other options"});
}

TEST_CASE("tracking beats independent single-image fits on jitter, and writes its outputs", "[track]") {
  // The schedule of docs/tracking.md's evaluation, shortened: official early stopping, all frames in every global
  // batch (min(16, N)), single fits with their own camera warm-up.
  TrackerOptions o = small_options();
  o.fit.camera.steps = 100;
  o.fit.camera.landmark_steps = 50;
  o.fit.iters = 100;
  o.online.iters = 100;
  o.online.early_stopping_delta = 5.0;
  o.global.iters = 100;
  o.global.batch_size = 16;
  const Tracker tracker(small_flame(), o);
  const SyntheticVideo v = small_video(tracker.fitter(), 8, 5);
  const TrackResult r = tracker.track(v.frames);
  TrackResult online = r;
  online.params = r.online_params;
  tracker.evaluate(online);
  std::vector<torch::Tensor> independent;
  for (const auto& f : v.frames) independent.push_back(tracker.fitter().fit(f).vertices);
  const auto indep = torch::cat(independent);
  const double j_track = vertex_jitter(r.vertices), j_indep = vertex_jitter(indep), j_truth = vertex_jitter(v.vertices),
               j_online = vertex_jitter(online.vertices);
  // The same run without the temporal terms: they are what holds the global stage's per-frame depths together.
  TrackerOptions unsmoothed = o;
  unsmoothed.global.smoothness.multiplier = 0.0;
  const double j_unsmoothed = vertex_jitter(Tracker(small_flame(), unsmoothed).track(v.frames).vertices);
  INFO("jitter mm: tracker " << j_track * 1000 << ", online stage " << j_online * 1000 << ", without smoothness "
                             << j_unsmoothed * 1000 << ", independent " << j_indep * 1000 << ", truth "
                             << j_truth * 1000);
  CHECK(j_track < 0.7 * j_unsmoothed);
  REQUIRE(j_track < j_indep);
  // The tracked meshes stay near the truth (the small model's neutral head is itself within a few mm of it).
  const double e_track = eval::aligned_vertex_error(r.vertices, v.vertices);
  INFO("error mm: tracker " << e_track * 1000);
  REQUIRE(e_track < 0.010);

  TempDir out;
  TrackOutputOptions oo;
  const std::string overlay = write_track_outputs(out.path.string(), tracker, r, v.frames, oo);
  const auto seq = io::read_safetensors(out.file("sequence.safetensors"));
  REQUIRE(seq.tensors.at("flame.exp").sizes() == torch::IntArrayRef({8, 10}));
  REQUIRE(seq.tensors.at("flame.shape").sizes() == torch::IntArrayRef({1, 10}));
  require_close(seq.tensors.at("flame.t"), r.params.translation, 0.0);
  REQUIRE(std::filesystem::exists(out.file("frames/00007/mesh.ply")));
  REQUIRE(std::filesystem::exists(out.file("frames/00000/params.json")));
  REQUIRE(std::filesystem::exists(out.file("sequence.json")));
  REQUIRE(std::filesystem::exists(out.file("loss.png")));
  REQUIRE(std::filesystem::exists(overlay));
  if (std::filesystem::is_directory(overlay)) REQUIRE(std::filesystem::exists(overlay + "/00007.png"));

  require_throws_with<ValueError>([&] { vertex_jitter(torch::zeros({2, 5, 3})); }, {"3 frames"});
}

TEST_CASE("the tracker starts the identity at the mean of the frames' codes and pulls it there", "[track][prior]") {
  TrackerOptions o = small_options();
  o.online.iters = 10;
  o.global.iters = 12;
  const Tracker tracker(small_flame(), o);
  SyntheticVideo v = small_video(tracker.fitter(), 4);
  torch::manual_seed(4);
  const auto c0 = torch::randn({1, 10}), c2 = torch::randn({1, 10});
  v.frames[0].identity = c0;  // official: MICA on every N // 10-th frame, codes averaged
  v.frames[2].identity = c2;
  const auto prior = (c0 + c2) / 2;
  TempDir state;
  const TrackResult r = tracker.track(v.frames, state.path.string());
  require_close(r.identity_prior, prior, 1e-6);
  // The online stage freezes the identity (official freeze_id): every frame was fitted with the prior's face.
  require_close(r.online_params.shape, prior, 0.0);
  // The global stage optimises it.
  REQUIRE((r.params.shape - prior).abs().max().item<double>() > 0);
  // A state folder made with another prior is refused.
  v.frames[2].identity = torch::Tensor();
  require_throws_with<ValueError>([&] { tracker.track(v.frames, state.path.string()); },
                                  {"options.json", "identity prior"});
}
