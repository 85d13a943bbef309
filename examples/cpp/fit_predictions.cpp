// fit_predictions: fits FLAME and the camera to saved predictions, no network and no face detector involved.
//
//   fit-inputs folder (landmarks, pupils, masks, UV and normal maps) --fit--> mesh.obj, mesh_world.ply, params
//
// Usage:
//   fit_predictions FOLDER [--uv UV.png|UV.npy --normals NORMALS.png|NORMALS.npy] [--out DIR] [--flame FLAME.npz]
//                   [--iters N] [--camera-steps N] [--image-size S]
//
// FOLDER is what `pixel3dmm predict PHOTO --out DIR` (or the `reconstruct` example) writes per photo:
// preprocess.json (landmarks, pupils), masks.safetensors, predictions.safetensors (float maps), crop.png and the
// official 8-bit uv_map.png / normals.png. By default the fit reads the float maps; --uv and --normals replace them
// with maps from other files: PNGs in the official encoding (uv (u, 1 - v, 0), normals (n + 1) / 2), as the official
// network inference writes them, or .npy arrays H x W x C of decoded float values (uv (u, 1 - v) in [0, 1], normals
// in [-1, 1]), as the library's datasets store them. The maps may have any size: the fit resizes them to its own.
// Without --flame the synthetic FLAME-layout model stands in for FLAME (use the model the predictions were made
// for). `pixel3dmm fit FOLDER` does the same with every option and writes the fit's pictures too.
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <pixel3dmm/core/runtime.h>
#include <pixel3dmm/fit/fitter.h>
#include <pixel3dmm/flame/flame.h>
#include <pixel3dmm/synth/synthetic_flame.h>
#include <pixel3dmm/io/image.h>
#include <pixel3dmm/io/map_png.h>
#include <pixel3dmm/io/mesh.h>
#include <pixel3dmm/io/npy.h>
#include <pixel3dmm/io/safetensors.h>
#include <pixel3dmm/reconstruct/fit_inputs.h>

namespace fs = std::filesystem;
using namespace pixel3dmm;

namespace {

struct Arguments {
  std::string folder;
  std::string uv_map, normal_map;  // empty: the folder's predictions.safetensors
  std::string out;                 // empty: write into FOLDER
  std::string flame;               // empty: the synthetic FLAME-layout model
  int iters = 500, camera_steps = 500, image_size = 256;  // the library's defaults (fit::FitConfig)
};

Arguments parse(int argc, char** argv) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--uv") a.uv_map = value();
    else if (flag == "--normals") a.normal_map = value();
    else if (flag == "--out") a.out = value();
    else if (flag == "--flame") a.flame = value();
    else if (flag == "--iters") a.iters = std::stoi(value());
    else if (flag == "--camera-steps") a.camera_steps = std::stoi(value());
    else if (flag == "--image-size") a.image_size = std::stoi(value());
    else if (flag.rfind("--", 0) == 0) throw std::invalid_argument("unknown option " + flag);
    else a.folder = flag;
  }
  if (a.folder.empty()) throw std::invalid_argument("usage: fit_predictions FOLDER [options] (see the source)");
  if (a.uv_map.empty() != a.normal_map.empty())
    throw std::invalid_argument("--uv and --normals go together (give both maps or neither)");
  if (a.out.empty()) a.out = a.folder;
  return a;
}

/// A map file -> 1 x C x H x W float32 decoded values (C = 2 for UV, 3 for normals).
torch::Tensor read_map(const std::string& path, bool normals) {
  const int64_t channels = normals ? 3 : 2;
  if (fs::path(path).extension() == ".npy") {
    const torch::Tensor a = io::read_npy(path);  // H x W x C
    if (a.dim() != 3 || a.size(2) != channels || !a.is_floating_point())
      throw std::invalid_argument(path + ": expected a float array H x W x " + std::to_string(channels));
    return a.to(torch::kFloat).permute({2, 0, 1}).unsqueeze(0).contiguous();
  }
  const torch::Tensor image = io::read_image(path);  // 1 x 3 x H x W in [0, 1]
  return normals ? io::normals_from_png_image(image) : io::uv_from_png_image(image);
}

}  // namespace

int main(int argc, char** argv) try {
  const Arguments args = parse(argc, argv);
  init_runtime();

  // 1. The saved fit inputs: the crop's landmarks, pupils and masks (preprocess.json, masks.safetensors) and the
  //    predicted maps (predictions.safetensors). Errors name the missing or malformed file and key.
  reconstruct::FitInputs saved = reconstruct::read_fit_inputs(args.folder);
  if (!args.uv_map.empty()) {
    saved.predictions.uv = read_map(args.uv_map, /*normals=*/false);          // 1 x 2 x H x W
    saved.predictions.normals = read_map(args.normal_map, /*normals=*/true);  // 1 x 3 x H x W
    if (saved.predictions.uv.sizes().slice(2) != saved.predictions.normals.sizes().slice(2))
      throw std::invalid_argument("the UV and normal maps differ in size");
  }
  std::printf("fit inputs from %s: maps %lld x %lld (%s)\n", args.folder.c_str(),
              static_cast<long long>(saved.predictions.uv.size(-2)), static_cast<long long>(saved.predictions.uv.size(-1)),
              args.uv_map.empty() ? "predictions.safetensors" : (args.uv_map + ", " + args.normal_map).c_str());

  // 2. The face model and the fitter (fit::FitConfig: every setting, with the official defaults).
  const flame::FlameModel model = args.flame.empty() ? synth::synthetic_flame() : flame::FlameModel::load(args.flame);
  fit::FitConfig config;
  config.iters = args.iters;
  config.camera.steps = args.camera_steps;
  config.camera.landmark_steps = args.camera_steps / 2;  // landmarks first, then the UV correspondences
  config.image_size = args.image_size;
  const fit::Fitter fitter(flame::Flame(model, flame::FlameOptions()), config);

  // 3. Fit: the target holds the maps and masks at the maps' size, with landmarks and pupils scaled to it.
  const fit::FitTarget target = reconstruct::make_target(saved.input, saved.predictions);
  const fit::FitResult result = fitter.fit(target);
  std::printf("fit: %d steps in %.1f s, final loss %.5g\n", result.iterations, result.seconds,
              result.log.empty() ? 0.0 : result.log.back().total);

  // 4. Write the meshes and the parameters under their official names (shape, exp, jaw, R, t, fl, pp, ...).
  fs::create_directories(args.out);
  io::Mesh mesh;
  mesh.vertices = result.vertices_flame[0].contiguous();  // V x 3, FLAME space, metres
  mesh.faces = model.faces.to(torch::kLong);
  if (model.uv_coords.defined() && model.uv_faces.defined()) {
    mesh.uvs = model.uv_coords.to(torch::kFloat);
    mesh.uv_faces = model.uv_faces.to(torch::kLong);
  }
  io::write_obj((fs::path(args.out) / "mesh.obj").string(), mesh);
  io::Mesh world;
  world.vertices = result.vertices[0].contiguous();  // with the head pose: what the camera sees
  world.faces = mesh.faces;
  io::write_ply((fs::path(args.out) / "mesh_world.ply").string(), world);
  io::TensorMap params;
  for (const auto& [name, value] : result.params.named()) params[name] = value.detach().contiguous();
  io::write_safetensors((fs::path(args.out) / "params.safetensors").string(), params);
  std::printf("wrote %s/{mesh.obj, mesh_world.ply, params.safetensors}\nfit_predictions ok\n", args.out.c_str());
  return 0;
} catch (const std::exception& e) {  // a missing or malformed file, a bad option: one line naming what failed
  std::fprintf(stderr, "fit_predictions: error: %s\n", e.what());
  return 1;
}
