// `pixel3dmm track`: FLAME tracking of a monocular video (file or image folder), or of a synthetic video with known
// geometry (--synthetic N), where it also reports the error against the truth and, with --compare, the same
// figures for independent single-image fits of every frame.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/pipeline.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/reconstruct/reconstructor.h"
#include "pixel3dmm/track/frame_source.h"
#include "pixel3dmm/track/outputs.h"
#include "pixel3dmm/track/synthetic_evaluation.h"
#include "pixel3dmm/track/tracker.h"

namespace pixel3dmm::cli {
namespace {
namespace fs = std::filesystem;

// Progress bars for both stages; `done` counts resumed frames too, so a resumed run's bar starts where it stopped.
track::TrackCallback track_progress(int64_t frames, int global_iters) {
  auto online = std::make_shared<Progress>("online", frames);
  auto global = std::make_shared<Progress>("global", std::max(1, global_iters));
  return [online, global](const track::TrackProgress& p) {
    char status[64];
    std::snprintf(status, sizeof status, "loss %.4g", p.loss);
    if (p.stage == "online") {
      online->update(p.done, status);
    } else if (p.done % 10 == 0 || p.done == p.total) {
      global->update(p.done, status);
    }
    return true;
  };
}

// OUT/preprocess.json: how the frames were cropped, which landmarks and masks the fit got, and per frame the crop
// box and (FaceBoxes) the detection the crop came from.
void write_preprocessing_json(const std::string& file, const track::VideoTargets& vt,
                              const track::FrontEndOptions& fo) {
  io::json frames = io::json::array();
  for (size_t i = 0; i < vt.boxes.size(); ++i) {
    const auto& b = vt.boxes[i];
    io::json f = {{"index", static_cast<int64_t>(i) * fo.every},
                  {"crop_box", {b.x0, b.y0, b.side}},
                  {"landmarks", static_cast<bool>(vt.detected[i])}};
    if (i < vt.face_boxes.size()) {
      const auto& d = vt.face_boxes[i];
      f["face_box"] = {d.x, d.y, d.width, d.height};
      f["face_box_score"] = d.score;
    }
    frames.push_back(f);
  }
  io::json j = {{"crop_method", vt.crop_method},
                {"landmark_method", vt.landmark_method},
                {"mask_method", vt.mask_method},
                {"smooth_radius", vt.crop_method == "official-sequence" ? 0 : fo.smooth_radius},
                {"frames", frames}};
  if (vt.crop_method == "official-sequence") {
    const auto& c = vt.official_crop;
    auto box = [](const preprocess::FaceBox& b) { return io::json{b.x, b.y, b.width, b.height}; };
    j["official_crop"] = {{"ymin_ymax_xmin_xmax", {c.ymin, c.ymax, c.xmin, c.xmax}},
                          {"mean_box", box(c.mean_box)},
                          {"union_box", box(c.union_box)},
                          {"used_union", c.used_union},
                          {"scale", c.scale}};
  }
  if (!fo.label_folder.empty()) j["label_maps"] = "seg_og";
  io::write_json(file, j);
}

int run_track(const std::vector<std::string>& argv) {
  Args args("pixel3dmm track",
            "Tracks FLAME through a monocular video: an online stage fits frame after frame (warm-started, early "
            "stopping), a global stage refines all frames jointly (one identity and camera, temporal smoothness). "
            "Interrupted runs continue from their state folder. See docs/tracking.md.");
  args.positional("VIDEO_OR_FOLDER", "video file (anything OpenCV reads) or folder of frame images", 0, 1)
      .option("out", "output folder", "pixel3dmm-track")
      .option("state", "resumable state folder (default: OUT/state)")
      .option("config", "tracking config JSON (fields of configs/track.json; missing fields keep the defaults)")
      .repeated("set", "override one tracking setting, e.g. --set global.iters=500 --set fit.image_size=128")
      .option("flame", "FLAME model (.npz/.safetensors, see `pixel3dmm convert`); default: the synthetic model")
      .option("every", "keep every n-th frame", "1")
      .option("max-frames", "track at most this many frames (-1: all)", "-1")
      .option("crop",
              "official (one static crop for all frames by the official sequence rule: mean / union of every frame's "
              "FaceBoxes box, scale 1.42 / 1.1; needs --faceboxes; the default with it) or smoothed (a crop per "
              "frame, its box median-smoothed over --smooth-crop frames: for long videos with large head motion; "
              "the default without --faceboxes, from dlib's landmarks)")
      .option("smooth-crop",
              "with --crop smoothed: radius (frames) of the median that stabilises the crop boxes; "
              "0 = per-frame crops",
              "3")
      .option("synthetic",
              "instead of an input: track a synthetic video of this many frames (exact rendered maps "
              "with noise and outliers) and report the error against its ground truth")
      .option("seed", "seed of the synthetic video", "0")
      .option("map-size", "synthetic maps' resolution (pixels)", "256")
      .option("neck-deg", "synthetic video: neck yaw and pitch of the key poses in [-deg, deg]", "0")
      .flag("compare", "with --synthetic: also fit every frame on its own and report both")
      .flag("no-video", "skip the overlay video")
      .flag("no-frames", "skip the per-frame mesh and parameter folders");
  declare_preprocess_options(args, true);
  declare_network_choice(args, "");
  declare_identity_options(args);
  if (!args.parse(argv)) {
    std::cout << args.help();
    return kOk;
  }
  const bool synthetic = args.has("synthetic");
  const double neck_deg = args.get_double("neck-deg", 0.0);
  if (synthetic == (args.positionals().size() == 1))
    throw UsageError("give either VIDEO_OR_FOLDER or --synthetic N");
  if (synthetic && (args.has("mica") || args.has("identity")))
    throw UsageError("--mica and --identity are for real videos (a synthetic video has no photos for MICA)");
  io::json cfg = args.has("config") ? io::read_json(args.get("config")) : io::json(track::TrackerOptions{});
  io::apply_overrides(cfg, args.all("set"));
  const auto options =
      io::parse_config<track::TrackerOptions>(cfg, args.has("config") ? args.get("config") : "track settings");
  const std::string out = args.get("out");
  fs::create_directories(out);
  const std::string state = args.has("state") ? args.get("state") : (fs::path(out) / "state").string();

  flame::Flame flame(reconstruct::load_flame_or_synthetic(args.get("flame")),
                     flame::FlameOptions());
  const track::Tracker tracker(flame, options);
  std::vector<fit::FitTarget> frames;
  double fps = 25.0;
  track::SyntheticEvaluation eval;
  if (synthetic) {
    synth::SyntheticVideoOptions so;
    so.frames = args.get_int("synthetic", 1);
    so.seed = static_cast<uint64_t>(args.get_int("seed", 0));
    so.maps.size = args.get_int("map-size", 16);
    so.pose.neck_deg = neck_deg;
    std::printf("pixel3dmm track: synthetic video, %lld frames, seed %llu, %lld px maps, neck +-%g deg\n",
                static_cast<long long>(so.frames), static_cast<unsigned long long>(so.seed),
                static_cast<long long>(so.maps.size), so.pose.neck_deg);
    auto single = std::make_shared<Progress>("single", so.frames);
    eval = track::evaluate_synthetic_video(tracker, so, args.has("compare"), state,
                                           track_progress(so.frames, options.global.iters),
                                           [&](int64_t i) { single->update(i + 1); });
    frames = eval.video.frames;
    write_folder_atomically((fs::path(out) / "input").string(), [&](const std::string& tmp) {
      for (size_t i = 0; i < frames.size(); ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "%05zu.png", i);
        io::write_image((fs::path(tmp) / name).string(), frames[i].image);
      }
    });
  } else {
    const std::string input = args.positionals().front();
    if (!fs::exists(input)) throw FileNotFound(input + ": no such video file or image folder");
    const preprocess::PreprocessOptions po = preprocess_options(args);
    const std::string crop = args.has("crop") ? args.get("crop") : po.crop == "official" ? "official" : "smoothed";
    PIXEL3DMM_CHECK_T(UsageError, crop == "official" || crop == "smoothed",
                      "--crop: expected official or smoothed, found '", crop, "'");
    PIXEL3DMM_CHECK_T(UsageError, crop == "smoothed" || po.crop == "official",
                      "--crop official is the official rule on FaceBoxesV2's boxes: give --faceboxes");
    const preprocess::Preprocessor preprocessor(po);
    const auto predictor = chosen_predictor(args, true);
    track::FrontEndOptions fo;
    fo.every = args.get_int("every", 1);
    fo.max_frames = args.get_int("max-frames", -1);
    fo.crop = crop;
    fo.smooth_radius = static_cast<int>(args.get_int("smooth-crop", 0));
    fo.map_size = options.fit.image_size;
    if (preprocess::resolved_mask_method(po) == "parser") fo.label_folder = (fs::path(out) / "seg_og").string();
    print_preprocessing(po);
    if (crop == "official")
      std::printf("crop: one static crop for all frames, the official sequence rule (mean / union box)\n");
    else
      std::printf("crop: per frame, box median-smoothed over %d frames either side\n", fo.smooth_radius);
    std::printf("pixel3dmm track: %s\n", input.c_str());
    const track::VideoTargets vt = track::load_video_targets(
        input, preprocessor, *predictor, fo, [&](const std::string& stage, int64_t done) {
          if (done % 10 == 0) std::fprintf(stderr, "%s: %lld frames\n", stage.c_str(), static_cast<long long>(done));
        });
    frames = vt.frames;
    fps = vt.fps;
    // MICA on every max(1, N / 10)-th frame, as the official preprocessing; the tracker averages the codes. The
    // frames are the crops at the fit's map size (the official code runs MICA on the 512 x 512 crops).
    const identity::IdentityPrior prior(identity_options(args));
    print_identity_prior(prior);
    if (prior.enabled())
      for (const int64_t i : identity::identity_frames(static_cast<int64_t>(frames.size())))
        frames[static_cast<size_t>(i)].identity =
            prior.code(frames[static_cast<size_t>(i)].image, frames[static_cast<size_t>(i)].landmarks,
                       input + " frame " + std::to_string(i));
    int64_t missing = 0;
    for (bool d : vt.detected) missing += d ? 0 : 1;
    std::printf("%zu frames (%lld without %s), %.1f fps\n", frames.size(), static_cast<long long>(missing),
                vt.crop_method == "landmarks-smoothed" ? "a detected face" : "landmarks (masked in the fit)", fps);
    if (vt.crop_method == "official-sequence") {
      const auto& c = vt.official_crop;
      std::printf("static crop: rows %lld..%lld, columns %lld..%lld (the %s box, scale %g)\n",
                  static_cast<long long>(c.ymin), static_cast<long long>(c.ymax), static_cast<long long>(c.xmin),
                  static_cast<long long>(c.xmax), c.used_union ? "union" : "mean", c.scale);
    }
    write_preprocessing_json((fs::path(out) / "preprocess.json").string(), vt, fo);
  }

  const track::TrackResult r =
      synthetic ? eval.result
                : tracker.track(frames, state, track_progress(static_cast<int64_t>(frames.size()), options.global.iters));
  if (!r.complete) throw Error("tracking stopped before the end; run again to continue from " + state);
  track::TrackOutputOptions oo;
  oo.video = !args.has("no-video");
  oo.frames = !args.has("no-frames");
  oo.fps = fps;
  const std::string overlay = track::write_track_outputs(out, tracker, r, frames, oo);
  int total_online = 0;
  for (int s : r.online_steps) total_online += s;
  const double n = static_cast<double>(frames.size());
  std::printf("\nonline stage: %.2f s/frame (%.1f steps/frame)\nglobal stage: %.2f s/frame (%zu steps)\n",
              r.online_seconds / n, total_online / n, r.global_seconds / n, r.global_loss.size());
  std::printf("wrote %s/{sequence.safetensors, sequence.json, frames/, loss.png%s}\n", out.c_str(),
              overlay.empty() ? "" : (", " + fs::path(overlay).filename().string()).c_str());

  if (synthetic) {
    const double head = eval.head_size;
    io::json report = {{"frames", frames.size()},
                       {"head_size_mm", head * 1000},
                       {"neck_deg", neck_deg}};
    std::printf("\n%-26s %11s %10s %10s %12s %10s\n", "", "posed (mm)", "% of head", "face (mm)", "jitter (mm)",
                "s/frame");
    auto row = [&](const char* name, const char* key, const track::SequenceErrors& e) {
      std::printf("%-26s %11.2f %9.2f%% %10.2f %12.3f %10.2f\n", name, e.posed * 1000, 100 * e.posed / head,
                  e.face * 1000, e.jitter * 1000, e.seconds_per_frame);
      report[key] = {{"posed_error_mm", e.posed * 1000},
                     {"posed_error_percent_of_head", 100 * e.posed / head},
                     {"face_region_error_mm", e.face * 1000},
                     {"jitter_mm", e.jitter * 1000},
                     {"seconds_per_frame", e.seconds_per_frame}};
    };
    row("truth", "truth", eval.truth);
    row("tracker, online stage", "online", eval.online);
    row("tracker, after global", "tracked", eval.tracked);
    if (eval.compared) row("independent single fits", "independent", eval.independent);
    io::write_json((fs::path(out) / "report.json").string(), report);
    std::printf("(errors: mean over frames after a rigid alignment per frame; jitter: mean |v[t+1] - 2 v[t] + "
                "v[t-1]| of world-space vertices; non-eyeball vertices; s/frame of the tracker: both stages)\n");
  }
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("track", "track FLAME through a video (online + global stages, resumable)", run_track);

}  // namespace pixel3dmm::cli
