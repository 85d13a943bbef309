// `pixel3dmm synth`: synthetic photos' fit inputs with ground truth, from the synthetic FLAME-layout model (or a
// user's FLAME): for trying `pixel3dmm fit`, for tests and for benchmarks.
#include <cstdio>
#include <filesystem>

#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/pipeline.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::cli {
namespace {

namespace fs = std::filesystem;

int run_synth(const std::vector<std::string>& argv) {
  Args args("pixel3dmm synth",
            "Writes synthetic heads as fit-input folders (what `pixel3dmm predict` writes for a photo) with their "
            "ground truth: <out>/<nnnn>/ holds crop.png, preprocess.json, masks.safetensors, "
            "predictions.safetensors (the exact rendered UV and normal maps, with noise and outliers), truth.ply "
            "(posed, FLAME space), truth_world.ply, truth_canonical.ply and truth_params.safetensors. "
            "`pixel3dmm fit <out>/0000` fits one.");
  args.option("out", "output folder", "pixel3dmm-synth")
      .option("count", "number of heads", "4")
      .option("seed", "seed of the first head (head i uses seed + i)", "0")
      .option("size", "map and crop size (pixels)", "512")
      .option("outliers", "share of map pixels replaced by uniform garbage", "0.1")
      .option("uv-noise", "Gaussian noise on the UV maps (UV units)", "0.003")
      .option("normal-noise", "Gaussian noise on the normal maps", "0.05")
      .option("flame", "FLAME model file; default: the synthetic FLAME-layout model");
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  const int64_t count = args.get_int("count", 1), seed = args.get_int("seed", 0);
  const int64_t size = args.get_int("size", 32);
  synth::SyntheticTargetOptions so;
  so.size = size;
  so.outlier_fraction = args.get_double("outliers", 0.0);
  so.uv_noise = args.get_double("uv-noise", 0.0);
  so.normal_noise = args.get_double("normal-noise", 0.0);
  const std::string out = args.get("out");
  prepare_output_folder(out);
  const fit::FitConfig config;
  const fit::Fitter fitter(flame::Flame(reconstruct::load_flame_or_synthetic(args.get("flame")), flame::FlameOptions()),
                           config);
  const auto faces = fitter.flame()->faces();
  Progress progress("synth", count);
  for (int64_t i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%04lld", static_cast<long long>(i));
    const fit::FitParams truth = synth::random_params(1, config.n_shape, config.n_expr, seed + i);
    so.seed = seed + i;
    const synth::SyntheticTarget st = synth::render_synthetic_target(fitter, truth, 0, so);
    preprocess::Preprocessed in;
    in.crop = st.target.image;
    in.landmarks = st.target.landmarks;
    in.iris = st.target.iris;
    in.uv_mask = st.target.uv_mask;
    in.normal_mask = st.target.normal_mask;
    in.fg_mask = st.target.fg_mask;
    in.valid_bg = st.target.valid_bg;
    in.affine = torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 0.0}, torch::kDouble).reshape({2, 3});
    in.box = torch::tensor({0.f, 0.f, float(size), float(size)});
    in.image_height = in.image_width = size;
    in.source = "synthetic head, seed " + std::to_string(seed + i);
    in.mask_method = "exact (rendered)";
    predict::Predictions p;
    p.uv = st.target.uv;
    p.normals = st.target.normals;
    write_folder_atomically((fs::path(out) / name).string(), [&](const std::string& dir) {
      reconstruct::write_fit_inputs(dir, in, p);
      auto mesh = [&](const torch::Tensor& v, const char* file) {
        io::Mesh m;
        m.vertices = v[0].contiguous();
        m.faces = faces;
        io::write_ply((fs::path(dir) / file).string(), m);
      };
      mesh(st.vertices_flame, "truth.ply");
      mesh(st.vertices, "truth_world.ply");
      mesh(st.canonical, "truth_canonical.ply");
      io::TensorMap params;
      for (const auto& [k, v] : truth.named()) params[k] = v.contiguous();
      io::write_safetensors((fs::path(dir) / "truth_params.safetensors").string(), params);
    });
    progress.update(i + 1);
  }
  std::printf("wrote %lld synthetic head(s) to %s/\n", static_cast<long long>(count), out.c_str());
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("synth", "synthetic heads as fit inputs with ground truth", run_synth);

}  // namespace pixel3dmm::cli
