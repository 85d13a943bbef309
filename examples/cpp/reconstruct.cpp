// reconstruct: one photo -> one FLAME mesh, the whole Pixel3DMM method in one file.
//
//   photo --preprocess--> face crop, 68 landmarks, pupils, masks
//         --predict-----> per-pixel FLAME UV coordinates and normals (two ViT networks)
//         --fit---------> FLAME identity, expression, pose and the camera (Adam through a differentiable renderer)
//         --write-------> mesh.obj (FLAME space) and mesh_world.ply (what the camera sees)
//
// Usage:
//   reconstruct [PHOTO] [--out DIR] [--flame FLAME.npz] [--uv-weights UV.safetensors --normal-weights N.safetensors]
//               [--iters N] [--camera-steps N] [--image-size S]
//
// With no arguments it runs on a photo of Debian's libdlib19.1 examples with the synthetic FLAME-layout model and
// the demo networks embedded in the library, so it needs no file of your own. Those stand-ins know nothing of real
// faces: for a real reconstruction give the FLAME model (`pixel3dmm convert`) and the converted official networks
// (docs/network.md). `pixel3dmm reconstruct` does the same through reconstruct::Reconstructor, with batches and
// every option; this program spells the stages out. It also writes the fit inputs into DIR, so that
// `fit_predictions DIR` (the other example) can fit them again.
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <pixel3dmm/core/runtime.h>
#include <pixel3dmm/fit/fitter.h>
#include <pixel3dmm/flame/flame.h>
#include <pixel3dmm/synth/synthetic_flame.h>
#include <pixel3dmm/io/mesh.h>
#include <pixel3dmm/predict/demo_model.h>
#include <pixel3dmm/predict/predictor.h>
#include <pixel3dmm/preprocess/preprocess.h>
#include <pixel3dmm/reconstruct/fit_inputs.h>

namespace fs = std::filesystem;
using namespace pixel3dmm;

namespace {

struct Arguments {
  std::string photo = "/usr/share/doc/libdlib19.1/examples/faces/2008_001322.jpg";
  std::string out = "reconstruct-out";
  std::string flame;                        // empty: the synthetic FLAME-layout model
  std::string uv_weights, normal_weights;   // empty: the embedded demo networks
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
    if (flag == "--out") a.out = value();
    else if (flag == "--flame") a.flame = value();
    else if (flag == "--uv-weights") a.uv_weights = value();
    else if (flag == "--normal-weights") a.normal_weights = value();
    else if (flag == "--iters") a.iters = std::stoi(value());
    else if (flag == "--camera-steps") a.camera_steps = std::stoi(value());
    else if (flag == "--image-size") a.image_size = std::stoi(value());
    else if (flag.rfind("--", 0) == 0) throw std::invalid_argument("unknown option " + flag);
    else a.photo = flag;
  }
  if (a.uv_weights.empty() != a.normal_weights.empty())
    throw std::invalid_argument("--uv-weights and --normal-weights go together (the fit needs both maps)");
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const Arguments args = parse(argc, argv);
  init_runtime();  // thread counts from PIXEL3DMM_NUM_THREADS / the machine, as the command-line program does

  // 1. The face model: FLAME (converted from the official pickle by `pixel3dmm convert`), or the synthetic model
  //    with FLAME's layout (5023 vertices, the same masks and landmark embedding) that ships with the library.
  const flame::FlameModel model = args.flame.empty() ? synth::synthetic_flame() : flame::FlameModel::load(args.flame);

  // 2. The networks: UV and normal predictors (DINO ViT + head), both needed by the fit.
  const predict::Predictor predictor = args.uv_weights.empty()
                                           ? predict::demo_predictor()
                                           : predict::Predictor::load(args.uv_weights, args.normal_weights);

  // 3. Preprocess: the largest face (dlib), its 68 landmarks, the official square crop (512 px), the pupils and the
  //    four masks the fit uses. Throws NoFaceFound when the photo shows no face.
  const preprocess::Preprocessor preprocessor;  // default options: see preprocess::PreprocessOptions
  const preprocess::Preprocessed input = preprocessor.file(args.photo);
  std::printf("face found in %s: %lld x %lld photo, crop %lld px\n", args.photo.c_str(),
              static_cast<long long>(input.image_width), static_cast<long long>(input.image_height),
              static_cast<long long>(input.crop.size(-1)));

  // 4. Predict: crop (1 x 3 x 512 x 512) -> uv (1 x 2 x H x W) and normals (1 x 3 x H x W) at the networks' size.
  const predict::Predictions predictions = predictor.predict(input.crop);
  std::printf("predicted UV and normal maps at %lld x %lld\n", static_cast<long long>(predictions.uv.size(-2)),
              static_cast<long long>(predictions.uv.size(-1)));

  // 5. Fit: the target gathers the maps, masks, landmarks and pupils in map pixels; the fitter runs the camera
  //    warm-up and then the full fit (fit::FitConfig holds every setting, with the official defaults).
  fit::FitConfig config;
  config.iters = args.iters;
  config.camera.steps = args.camera_steps;
  config.camera.landmark_steps = args.camera_steps / 2;  // the official split: landmarks first, then UV
  config.image_size = args.image_size;
  const fit::Fitter fitter(flame::Flame(model, flame::FlameOptions()), config);
  const fit::FitTarget target = reconstruct::make_target(input, predictions);
  int step = 0;
  const fit::FitResult result = fitter.fit(target, [&](const fit::FitLogEntry& entry) {
    if (++step % 50 == 0) std::printf("  step %4d (%s): loss %.5g\n", step, entry.stage.c_str(), entry.total);
    return true;  // false would stop the fit early
  });
  std::printf("fit: %d steps in %.1f s, final loss %.5g\n", result.iterations, result.seconds,
              result.log.empty() ? 0.0 : result.log.back().total);

  // 6. Write: the posed mesh in FLAME space (without the head pose, as the official tracker writes it) with its
  //    texture coordinates, the same mesh as the camera sees it, and the fit inputs for `fit_predictions`.
  fs::create_directories(args.out);
  io::Mesh mesh;
  mesh.vertices = result.vertices_flame[0].contiguous();  // V x 3, metres
  mesh.faces = model.faces.to(torch::kLong);              // F x 3
  if (model.uv_coords.defined() && model.uv_faces.defined()) {
    mesh.uvs = model.uv_coords.to(torch::kFloat);
    mesh.uv_faces = model.uv_faces.to(torch::kLong);
  }
  io::write_obj((fs::path(args.out) / "mesh.obj").string(), mesh);
  io::Mesh world;
  world.vertices = result.vertices[0].contiguous();
  world.faces = mesh.faces;
  io::write_ply((fs::path(args.out) / "mesh_world.ply").string(), world);
  reconstruct::write_fit_inputs(args.out, input, predictions);
  std::printf("wrote %s/{mesh.obj, mesh_world.ply} and the fit inputs\nreconstruct ok\n", args.out.c_str());
  return 0;
} catch (const std::exception& e) {  // a bad file, no face, a bad option: one line naming what failed
  std::fprintf(stderr, "reconstruct: error: %s\n", e.what());
  return 1;
}
