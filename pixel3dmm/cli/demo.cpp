// `pixel3dmm demo`: the whole pipeline on the embedded default (the synthetic FLAME-layout model and a synthetic
// head), ending with the error against the known ground truth.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/outputs.h"
#include "pixel3dmm/fit/synthetic_target.h"
#include "pixel3dmm/flame/synthetic.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/io/resize.h"
#include "pixel3dmm/predict/demo_model.h"
#include "pixel3dmm/train/synthetic_dataset.h"

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
  flame::Flame flame(flame::synthetic_flame(), flame::FlameOptions());
  const fit::Fitter fitter(flame, config);
  fit::SyntheticTargetOptions so;
  so.size = 512;  // the official network's output resolution; the fit resizes to image_size
  so.seed = seed;
  fit::SyntheticTarget st;
  std::string source;
  if (maps == "network") {
    // A synthetic photo; its masks, landmarks (1 px noise, as a detector's) and ground truth from the same head.
    train::SyntheticPhotoOptions po;
    po.size = 256;
    const train::SyntheticPhoto photo = train::render_synthetic_photo(fitter, seed, 0, po);
    const predict::Predictor predictor = predict::demo_predictor();
    const predict::Predictions p = predictor.predict(photo.sample.image.unsqueeze(0));
    so.size = p.uv.size(-1);  // every map of a target shares one size: the networks' output
    st = fit::render_synthetic_target(fitter, photo.params, 0, so);
    st.target.uv = p.uv;
    st.target.normals = p.normals;
    st.target.image = io::resize_pil_bicubic(photo.sample.image.unsqueeze(0), so.size, so.size);
    source = "the embedded demo networks (" + std::to_string(predictor.image_size()) + " px) on a synthetic photo";
  } else {
    const fit::FitParams truth = fit::random_params(1, config.n_shape, config.n_expr, seed);
    st = fit::render_synthetic_target(fitter, truth, 0, so);
    source = "rendered ground-truth maps + noise + 10% outliers";
  }
  std::printf("predictions: %s\n", source.c_str());

  const int total = config.camera.steps + config.iters;
  Progress progress("fitting", total);
  int done = 0;
  const fit::FitResult result = fitter.fit(st.target, [&](const fit::FitLogEntry& e) {
    ++done;
    if (done % 10 == 0 || done == total) {
      char status[64];
      std::snprintf(status, sizeof status, "%s loss %.4g", e.stage.c_str(), e.total);
      progress.update(done, status);
    }
    return true;
  });

  std::filesystem::create_directories(out);
  fit::write_fit_outputs(out, fitter, result, st.target);
  io::write_image((std::filesystem::path(out) / "input.png").string(), st.target.image);
  io::Mesh truth_mesh;
  truth_mesh.vertices = st.vertices_flame[0].contiguous();
  truth_mesh.faces = fitter.flame()->faces();
  io::write_ply((std::filesystem::path(out) / "truth.ply").string(), truth_mesh);

  const auto head = st.vertices[0];
  const double head_size = (std::get<0>(head.max(0)) - std::get<0>(head.min(0))).norm().item<double>();
  const auto measured = fit::non_eyeball_vertices(flame->model());
  const double start_error = fit::aligned_vertex_error(
      fitter.evaluate(fit::FitParams::initial(1, flame->n_shape(), flame->n_expr(), config.focal_init)).vertices,
      st.vertices, measured);
  const double world_error = fit::aligned_vertex_error(result.vertices, st.vertices, measured);
  const double face_error =
      fit::aligned_vertex_error(result.vertices, st.vertices, fit::face_region_vertices(flame->model()));
  const double flame_error = fit::mean_vertex_error(result.vertices_flame, st.vertices_flame);
  const double neutral_error = fit::mean_vertex_error(result.canonical, st.canonical);
  io::json report = {{"seed", seed},
                     {"iterations", result.iterations},
                     {"seconds", result.seconds},
                     {"ms_per_iteration", 1000.0 * result.seconds / std::max(1, result.iterations)},
                     {"head_size_mm", head_size * 1000},
                     {"start_error_mm", start_error * 1000},
                     {"posed_error_mm", world_error * 1000},
                     {"face_region_error_mm", face_error * 1000},
                     {"posed_error_flame_space_mm", flame_error * 1000},
                     {"neutral_error_mm", neutral_error * 1000},
                     {"posed_error_percent_of_head", 100 * world_error / head_size},
                     {"predictions", source}};
  io::write_json((std::filesystem::path(out) / "report.json").string(), report);

  std::printf("\n%-34s %10s\n", "result", "value");
  std::printf("%-34s %10.1f s (%d steps, %.1f ms/step)\n", "fit time", result.seconds, result.iterations,
              1000.0 * result.seconds / std::max(1, result.iterations));
  std::printf("%-34s %10.2f mm\n", "mean vertex error at the start", start_error * 1000);
  std::printf("%-34s %10.2f mm (%.2f%% of the %.0f mm head)\n", "mean vertex error, fitted (posed)",
              world_error * 1000, 100 * world_error / head_size, head_size * 1000);
  std::printf("%-34s %10.2f mm (%.2f%%; what a photo shows)\n", "mean vertex error, face region", face_error * 1000,
              100 * face_error / head_size);
  std::printf("%-34s %10.2f mm\n", "mean vertex error, neutral shape", neutral_error * 1000);
  std::printf("\nwrote %s/{mesh.ply, mesh.obj, mesh_world.ply, canonical.ply, truth.ply, params.json, "
              "params.safetensors, overlay.png, maps.png, loss.png, loss.csv, input.png, report.json}\n",
              out.c_str());
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("demo", "reconstruct a synthetic head end to end and report the error", run_demo);

}  // namespace pixel3dmm::cli
