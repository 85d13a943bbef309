// `pixel3dmm demo`: the whole pipeline on the embedded default (the synthetic FLAME-layout model and a synthetic
// head), ending with the error against the known ground truth.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/eval/vertex_error.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/outputs.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/io/resize.h"
#include "pixel3dmm/predict/demo_model.h"
#include "pixel3dmm/synth/synthetic_dataset.h"

namespace pixel3dmm::cli {
namespace {

int run_demo(const std::vector<std::string>& argv) {
  Args args("pixel3dmm demo",
            "Reconstructs a synthetic head end to end: renders a synthetic photo, predicts its UV and normal maps "
            "with the embedded demo networks, fits FLAME with the default fit, writes the outputs and reports the "
            "error against the known ground truth.");
  args.option("out", "output folder", "pixel3dmm-demo")
      .option("maps", "where the UV and normal maps come from: 'network' (the embedded demo networks on the "
              "synthetic photo) or 'exact' (the rendered ground-truth maps with noise and 10% outliers)", "network")
      .option("seed", "seed of the synthetic head (identity, expression, pose, camera, noise)", "0")
      .option("config", "fit config JSON (defaults: configs/fit.json's values)")
      .repeated("set", "override a fit config field, e.g. --set iters=300 or --set loss.normal=500");
  if (!args.parse(argv)) {
    std::cout << args.help();
    return kOk;
  }
  io::json cfg_json = args.has("config") ? io::read_json(args.get("config")) : io::json(fit::FitConfig{});
  io::apply_overrides(cfg_json, args.all("set"));
  const auto config = cfg_json.get<fit::FitConfig>();
  const uint64_t seed = std::stoull(args.get("seed"));
  const std::string out = args.get("out");

  std::printf("pixel3dmm demo: synthetic FLAME-layout model (5023 vertices), synthetic head seed %llu\n",
              static_cast<unsigned long long>(seed));
  const std::string maps = args.get("maps");
  if (maps != "network" && maps != "exact")
    throw ValueError("--maps: expected 'network' or 'exact', found '" + maps + "'");
  flame::Flame flame(synth::synthetic_flame(), flame::FlameOptions());
  const fit::Fitter fitter(flame, config);
  synth::SyntheticTargetOptions so;
  so.size = 512;  // the official network's output resolution; the fit resizes to image_size
  so.seed = seed;
  synth::SyntheticTarget st;
  std::string source;
  if (maps == "network") {
    // A synthetic photo; its masks, landmarks (1 px noise, as a detector's) and ground truth from the same head.
    synth::SyntheticPhotoOptions po;
    po.size = 256;
    const synth::SyntheticPhoto photo = synth::render_synthetic_photo(fitter, seed, 0, po);
    const predict::Predictor predictor = predict::demo_predictor();
    const predict::Predictions p = predictor.predict(photo.image.unsqueeze(0));
    so.size = p.uv.size(-1);  // every map of a target shares one size: the networks' output
    st = synth::render_synthetic_target(fitter, photo.params, 0, so);
    st.target.uv = p.uv;
    st.target.normals = p.normals;
    st.target.image = io::resize_pil_bicubic(photo.image.unsqueeze(0), so.size, so.size);
    source = "the embedded demo networks (" + std::to_string(predictor.image_size()) + " px) on a synthetic photo";
  } else {
    const fit::FitParams truth = synth::random_params(1, config.n_shape, config.n_expr, seed);
    st = synth::render_synthetic_target(fitter, truth, 0, so);
    source = "rendered ground-truth maps + noise + 10% outliers";
  }
  std::printf("predictions: %s\n", source.c_str());

  // A progress bar per fit: the method, then the landmark-only baseline on the same photo (what the dense cues
  // are meant to beat).
  const int total = config.camera.steps + config.iters;
  const auto progress_callback = [total](Progress& progress) {
    return [&progress, total, done = 0](const fit::FitLogEntry& e) mutable {
      ++done;
      if (done % 10 == 0 || done == total) {
        char status[64];
        std::snprintf(status, sizeof status, "%s loss %.4g", e.stage.c_str(), e.total);
        progress.update(done, status);
      }
      return true;
    };
  };
  Progress progress("fitting", total);
  const fit::FitResult result = fitter.fit(st.target, progress_callback(progress));
  Progress baseline_progress("landmarks only", total);
  const fit::FitResult baseline = fitter.fit_landmarks_only({st.target}, progress_callback(baseline_progress));

  std::filesystem::create_directories(out);
  fit::write_fit_outputs(out, fitter, result, st.target);
  io::write_image((std::filesystem::path(out) / "input.png").string(), st.target.image);
  io::Mesh truth_mesh;
  truth_mesh.vertices = st.vertices_flame[0].contiguous();
  truth_mesh.faces = fitter.flame()->faces();
  io::write_ply((std::filesystem::path(out) / "truth.ply").string(), truth_mesh);

  const auto head = st.vertices[0];
  const double head_size = (std::get<0>(head.max(0)) - std::get<0>(head.min(0))).norm().item<double>();
  const auto whole_head = eval::non_eyeball_vertices(flame->model());
  const auto face_region = eval::face_region_vertices(flame->model());
  struct Errors {
    double posed, face, neutral;  // metres
  };
  const auto errors_of = [&](const torch::Tensor& vertices, const torch::Tensor& canonical) {
    return Errors{eval::aligned_vertex_error(vertices, st.vertices, whole_head),
                  eval::aligned_vertex_error(vertices, st.vertices, face_region),
                  eval::mean_vertex_error(canonical, st.canonical)};
  };
  const auto start = fitter.evaluate(fit::FitParams::initial(1, flame->n_shape(), flame->n_expr(), config.focal_init));
  const Errors e0 = errors_of(start.vertices, start.flame.v_shaped);
  const Errors e_full = errors_of(result.vertices, result.canonical);
  const Errors e_lmk = errors_of(baseline.vertices, baseline.canonical);
  const double flame_error = eval::mean_vertex_error(result.vertices_flame, st.vertices_flame);
  const auto mm = [](const Errors& e) {
    return io::json{{"posed_error_mm", e.posed * 1000}, {"face_region_error_mm", e.face * 1000},
                    {"neutral_error_mm", e.neutral * 1000}};
  };
  io::json report = {{"seed", seed},
                     {"iterations", result.iterations},
                     {"seconds", result.seconds},
                     {"ms_per_iteration", 1000.0 * result.seconds / std::max(1, result.iterations)},
                     {"head_size_mm", head_size * 1000},
                     {"start_error_mm", e0.posed * 1000},
                     {"posed_error_mm", e_full.posed * 1000},
                     {"face_region_error_mm", e_full.face * 1000},
                     {"posed_error_flame_space_mm", flame_error * 1000},
                     {"neutral_error_mm", e_full.neutral * 1000},
                     {"posed_error_percent_of_head", 100 * e_full.posed / head_size},
                     {"start", mm(e0)},
                     {"landmarks_only", mm(e_lmk)},
                     {"landmarks_only_seconds", baseline.seconds},
                     {"predictions", source}};
  io::write_json((std::filesystem::path(out) / "report.json").string(), report);

  // Posed errors after rigid alignment (whole head without the eyeballs; face region: what a photo shows); the
  // neutral error compares the identity alone (no expression, no pose) with the truth's.
  std::printf("\nfit time %.1f s (%d steps, %.1f ms/step); the landmark-only baseline %.1f s\n", result.seconds,
              result.iterations, 1000.0 * result.seconds / std::max(1, result.iterations), baseline.seconds);
  std::printf("\n%-30s %12s %16s %16s\n", "mean vertex error (mm)", "start", "landmarks only", "pixel3dmm");
  const auto row = [](const char* name, double start_m, double lmk_m, double full_m) {
    const char* verdict = full_m < lmk_m ? "better than landmarks" : "worse than landmarks";
    std::printf("%-30s %12.2f %16.2f %16.2f  %s\n", name, start_m * 1000, lmk_m * 1000, full_m * 1000, verdict);
  };
  row("posed, whole head", e0.posed, e_lmk.posed, e_full.posed);
  row("posed, face region", e0.face, e_lmk.face, e_full.face);
  row("neutral shape (identity)", e0.neutral, e_lmk.neutral, e_full.neutral);
  std::printf("%-30s %12.0f mm\n", "head size", head_size * 1000);
  std::printf("\nwrote %s/{mesh.ply, mesh.obj, mesh_world.ply, canonical.ply, truth.ply, params.json, "
              "params.safetensors, overlay.png, maps.png, loss.png, loss.csv, input.png, report.json}\n",
              out.c_str());
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("demo", "reconstruct a synthetic head end to end and report the error", run_demo);

}  // namespace pixel3dmm::cli
