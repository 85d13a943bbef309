// Fit accuracy on synthetic ground truth: random identity, expression, pose and camera of the synthetic
// FLAME-layout model; its rendered UV and normal maps with noise and 10% outlier pixels stand in for the network's
// predictions. Full fit vs landmark-only fit from the neutral start over N single images (default 20), then image
// sets: M identities (default 5) seen in 3 photos each, joint fit vs single-image fits. Official settings or those
// of a config file (e.g. configs/fit-robust.json):
//   bench_fit_accuracy [cases] [config.json] [sets]
// Posed errors are mean vertex distances after rigid alignment (see aligned_vertex_error) over two vertex sets: the
// whole head without eyeballs, and the face region a photo shows (face_region_vertices; the paper's benchmark
// scores a face crop too). Neutral errors compare template + identity without alignment.
#include <cstdio>
#include <cstdlib>

#include "bench_util.h"
#include "pixel3dmm/eval/vertex_error.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/config.h"

namespace {

using namespace pixel3dmm;

double head_size(const torch::Tensor& vertices) {  // bounding-box diagonal of one posed head, metres
  const auto head = vertices[0];
  return (std::get<0>(head.max(0)) - std::get<0>(head.min(0))).norm().item<double>();
}

synth::SyntheticTargetOptions target_options(uint64_t seed) {
  synth::SyntheticTargetOptions so;
  so.size = 512;  // the network's output resolution; the fit resizes to its image_size
  so.seed = seed;
  return so;
}

}  // namespace

int main(int argc, char** argv) {
  const int cases = argc > 1 ? std::atoi(argv[1]) : 20;
  const int sets = argc > 3 ? std::atoi(argv[3]) : 5;
  bench::print_header("FLAME fit accuracy on synthetic ground truth (noise + 10% outliers)");
  flame::Flame flame(synth::synthetic_flame(), flame::FlameOptions());
  const fit::FitConfig config = argc > 2 ? io::load_config<fit::FitConfig>(argv[2]) : fit::FitConfig{};
  std::printf("settings: %s\n", argc > 2 ? argv[2] : "official defaults");
  const fit::Fitter fitter(flame, config);
  const auto head = eval::non_eyeball_vertices(flame->model());
  const auto face = eval::face_region_vertices(flame->model());
  std::printf("vertex sets: head %ld (all but the eyeballs), face region %ld\n\n", static_cast<long>(head.numel()),
              static_cast<long>(face.numel()));

  std::printf("single images: posed error after rigid alignment (mm), neutral error (mm)\n");
  std::printf("%-5s %9s | %9s %9s %9s | %9s %9s %8s | %9s %9s\n", "case", "head (mm)", "start", "landmk", "full",
              "landmk", "full", "full %", "landmk", "full");
  std::printf("%-5s %9s | %29s | %28s | %19s\n", "", "", "whole head", "face region", "neutral");
  double sum_lmk = 0, sum_full = 0, sum_face_lmk = 0, sum_face = 0, sum_pct = 0, sum_pct_head = 0, sum_neutral = 0,
         sum_lmk_neutral = 0, seconds = 0;
  for (int i = 0; i < cases; ++i) {
    const fit::FitParams truth = synth::random_params(1, 300, 100, 1000 + i);
    const synth::SyntheticTarget st = synth::render_synthetic_target(fitter, truth, 0, target_options(1000 + i));
    const double size = head_size(st.vertices);
    const double start = eval::aligned_vertex_error(
        fitter.evaluate(fit::FitParams::initial(1, 300, 100, config.focal_init)).vertices.detach(), st.vertices, head);
    const fit::FitResult lmk = fitter.fit_landmarks_only({st.target});
    const fit::FitResult full = fitter.fit(st.target);
    seconds += full.seconds;
    const double e_lmk = eval::aligned_vertex_error(lmk.vertices, st.vertices, head);
    const double e_full = eval::aligned_vertex_error(full.vertices, st.vertices, head);
    const double f_lmk = eval::aligned_vertex_error(lmk.vertices, st.vertices, face);
    const double f_full = eval::aligned_vertex_error(full.vertices, st.vertices, face);
    const double n_full = eval::mean_vertex_error(full.canonical, st.canonical);
    const double n_lmk = eval::mean_vertex_error(lmk.canonical, st.canonical);
    sum_lmk += e_lmk, sum_full += e_full, sum_face_lmk += f_lmk, sum_face += f_full;
    sum_pct += f_full / size, sum_pct_head += e_full / size, sum_neutral += n_full, sum_lmk_neutral += n_lmk;
    std::printf("%-5d %9.1f | %9.2f %9.2f %9.2f | %9.2f %9.2f %7.2f%% | %9.2f %9.2f\n", i, size * 1000,
                start * 1000, e_lmk * 1000, e_full * 1000, f_lmk * 1000, f_full * 1000, 100 * f_full / size,
                n_lmk * 1000, n_full * 1000);
    std::fflush(stdout);
  }
  if (cases > 0) {
    std::printf("\nmean over %d images:\n", cases);
    std::printf("  face region: landmark-only %.2f mm, full %.2f mm = %.2f%% of head size (%.0f%% lower than "
                "landmark-only)\n",
                1000 * sum_face_lmk / cases, 1000 * sum_face / cases, 100 * sum_pct / cases,
                100 * (1 - sum_face / sum_face_lmk));
    std::printf("  whole head:  landmark-only %.2f mm, full %.2f mm = %.2f%% of head size (%.0f%% lower)\n",
                1000 * sum_lmk / cases, 1000 * sum_full / cases, 100 * sum_pct_head / cases,
                100 * (1 - sum_full / sum_lmk));
    std::printf("  neutral:     landmark-only %.2f mm, full %.2f mm\n", 1000 * sum_lmk_neutral / cases,
                1000 * sum_neutral / cases);
    std::printf("  %.1f s per full fit\n", seconds / cases);
  }

  // Image sets: one identity in 3 photos (shared shape, per-photo expression, pose and placement, one camera).
  if (sets > 0) {
    const int views = 3;
    std::printf("\nimage sets: %d photos of one identity; joint fit vs a single-image fit of each photo\n", views);
    std::printf("%-5s | %12s %12s | %12s %12s | %8s\n", "set", "face single", "face joint", "neutral 1st",
                "neutral joint", "joint s");
    double s_single = 0, s_joint = 0, n_single = 0, n_joint = 0;
    for (int i = 0; i < sets; ++i) {
      const fit::FitParams truth = synth::random_params(views, 300, 100, 2000 + i);
      std::vector<fit::FitTarget> targets;
      std::vector<torch::Tensor> truth_vertices;
      torch::Tensor canonical;
      double single = 0, neutral_first = 0;
      for (int v = 0; v < views; ++v) {
        const synth::SyntheticTarget st = synth::render_synthetic_target(fitter, truth, v, target_options(2000 + 10 * i + v));
        targets.push_back(st.target);
        truth_vertices.push_back(st.vertices);
        canonical = st.canonical;
        const fit::FitResult r = fitter.fit(st.target);
        single += eval::aligned_vertex_error(r.vertices, st.vertices, face) / views;
        if (v == 0) neutral_first = eval::mean_vertex_error(r.canonical, st.canonical);
      }
      const fit::FitResult joint = fitter.fit(targets);
      double joint_face = 0;
      for (int v = 0; v < views; ++v)
        joint_face += eval::aligned_vertex_error(joint.vertices.slice(0, v, v + 1), truth_vertices[v], face) / views;
      const double joint_neutral = eval::mean_vertex_error(joint.canonical, canonical);
      s_single += single, s_joint += joint_face, n_single += neutral_first, n_joint += joint_neutral;
      std::printf("%-5d | %12.2f %12.2f | %12.2f %12.2f | %8.1f\n", i, 1000 * single, 1000 * joint_face,
                  1000 * neutral_first, 1000 * joint_neutral, joint.seconds);
      std::fflush(stdout);
    }
    std::printf("\nmean over %d sets: face region single %.2f mm, joint %.2f mm; neutral single %.2f mm, joint "
                "%.2f mm\n",
                sets, 1000 * s_single / sets, 1000 * s_joint / sets, 1000 * n_single / sets, 1000 * n_joint / sets);
  }
  return 0;
}
