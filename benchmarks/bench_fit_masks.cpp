// What the fit loses with estimated instead of exact inputs, on synthetic ground truth: the official pipeline's
// masks come from a face-parsing network and its pupils from PIPNet; pixel3dmm estimates masks from the 68
// landmarks (+ GrabCut) and pupils from the eye's pixels (pixel3dmm/preprocess). Per case, the robust fit with
//   exact      the rendered masks, the true pupils
//   parser     masks_from_segmentation (the official rule) of a perfect parser's label map (SyntheticTarget::labels)
//   landmarks  masks_from_landmarks (landmark polygons + GrabCut) on the rendered picture
//   no-grabcut masks_from_landmarks without GrabCut
//   no-iris    exact masks, the iris term off
//   located    exact masks, pupils from locate_pupils on the rendered picture
//   bench_fit_masks [cases] [config.json]       (default 10 cases, configs/fit-robust.json settings if given)
#include <cstdio>
#include <cstdlib>

#include "bench_util.h"
#include "pixel3dmm/eval/vertex_error.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/preprocess/masks.h"
#include "pixel3dmm/preprocess/pupils.h"

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  const int cases = argc > 1 ? std::atoi(argv[1]) : 10;
  bench::print_header("FLAME fit with estimated masks and pupils vs exact ones (synthetic ground truth)");
  flame::Flame flame(synth::synthetic_flame(), flame::FlameOptions());
  const fit::FitConfig config = argc > 2 ? io::load_config<fit::FitConfig>(argv[2]) : fit::FitConfig{};
  std::printf("settings: %s\n", argc > 2 ? argv[2] : "official defaults");
  fit::FitConfig no_iris_config = config;
  no_iris_config.loss.landmarks_iris = 0.0;
  const fit::Fitter fitter(flame, config), no_iris(flame, no_iris_config);
  const auto face = eval::face_region_vertices(flame->model());
  const auto head = eval::non_eyeball_vertices(flame->model());
  constexpr int kVariants = 6;
  const char* names[kVariants] = {"exact", "parser", "landmarks", "no-grabcut", "no-iris", "located"};
  double face_sum[kVariants] = {}, head_sum[kVariants] = {}, iou_sum[3] = {}, pupil_px = 0;
  std::printf("face-region error (mm) per variant; IoU of the estimated fg_mask with the exact one\n");
  std::printf("%-5s %10s %10s %10s %10s %10s %10s | %8s %8s %8s %9s\n", "case", names[0], names[1], names[2], names[3],
              names[4], names[5], "IoU prs", "IoU gc", "IoU lmk", "pupil px");
  auto iou = [](const torch::Tensor& a, const torch::Tensor& b) {
    const auto x = a > 0.5, y = b > 0.5;
    return (x & y).sum().item<double>() / std::max<double>(1.0, (x | y).sum().item<double>());
  };
  for (int i = 0; i < cases; ++i) {
    const fit::FitParams truth = synth::random_params(1, 300, 100, 1000 + i);
    synth::SyntheticTargetOptions so;
    so.size = 512;
    so.seed = 1000 + i;
    const synth::SyntheticTarget st = synth::render_synthetic_target(fitter, truth, 0, so);
    auto with_masks = [&](const preprocess::FaceMasks& m) {
      fit::FitTarget t = st.target;
      t.uv_mask = m.uv_mask, t.normal_mask = m.normal_mask, t.fg_mask = m.fg_mask, t.valid_bg = m.valid_bg;
      return t;
    };
    const auto m_parser = preprocess::masks_from_segmentation(st.labels);
    preprocess::LandmarkMaskOptions gc, plain;
    plain.grabcut = false;
    const auto m_gc = preprocess::masks_from_landmarks(st.target.image, st.target.landmarks[0], gc);
    const auto m_plain = preprocess::masks_from_landmarks(st.target.image, st.target.landmarks[0], plain);
    fit::FitTarget located = st.target;
    located.iris = preprocess::locate_pupils(st.target.image, st.target.landmarks[0]).unsqueeze(0);
    const double px = (located.iris - st.target.iris).norm(2, -1).mean().item<double>();
    const fit::FitResult r[kVariants] = {fitter.fit(st.target),        fitter.fit(with_masks(m_parser)),
                                         fitter.fit(with_masks(m_gc)), fitter.fit(with_masks(m_plain)),
                                         no_iris.fit(st.target),       fitter.fit(located)};
    double f[kVariants];
    for (int k = 0; k < kVariants; ++k) {
      f[k] = eval::aligned_vertex_error(r[k].vertices, st.vertices, face);
      face_sum[k] += f[k];
      head_sum[k] += eval::aligned_vertex_error(r[k].vertices, st.vertices, head);
    }
    const double iou_parser = iou(m_parser.fg_mask, st.target.fg_mask), iou_gc = iou(m_gc.fg_mask, st.target.fg_mask),
                 iou_plain = iou(m_plain.fg_mask, st.target.fg_mask);
    iou_sum[0] += iou_parser, iou_sum[1] += iou_gc, iou_sum[2] += iou_plain, pupil_px += px;
    std::printf("%-5d %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f | %8.3f %8.3f %8.3f %9.2f\n", i, 1000 * f[0],
                1000 * f[1], 1000 * f[2], 1000 * f[3], 1000 * f[4], 1000 * f[5], iou_parser, iou_gc, iou_plain, px);
    std::fflush(stdout);
  }
  std::printf("\nmean over %d cases (mm):\n%-12s %12s %12s\n", cases, "variant", "face region", "whole head");
  for (int k = 0; k < kVariants; ++k)
    std::printf("%-12s %12.2f %12.2f\n", names[k], 1000 * face_sum[k] / cases, 1000 * head_sum[k] / cases);
  std::printf(
      "fg_mask IoU with the exact mask: parser %.3f, GrabCut %.3f, landmarks only %.3f; located pupils %.2f "
      "px from the true ones (512 x 512)\n",
      iou_sum[0] / cases, iou_sum[1] / cases, iou_sum[2] / cases, pupil_px / cases);
  return 0;
}
