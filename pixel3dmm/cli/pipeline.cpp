#include "pixel3dmm/cli/pipeline.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/distributed/environment.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/predict/demo_model.h"

namespace pixel3dmm::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPrecisionHelp =
    "arithmetic of the networks: float32, or bf16 (about 2x faster on a CPU with native bfloat16; see "
    "docs/speed.md for its error)";

predict::Precision precision_option(const Args& args) {
  if (!args.has("precision")) return predict::Precision::Float32;
  try {
    return predict::parse_precision(args.get("precision"));
  } catch (const ValueError& e) {
    throw UsageError(std::string("--") + e.what());
  }
}

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
    if (ext == e) return true;
  return false;
}

}  // namespace

void declare_preprocess_options(Args& args, bool sequence) {
  args.option("landmark-model", "dlib 68-point model (default: $PIXEL3DMM_DLIB_LANDMARKS or Debian's libdlib-data)")
      .option("faceboxes",
              std::string("converted FaceBoxesV2 weights (python -m pixel3dmm.convert_preprocessing faceboxes "
                          "FaceBoxesV2.pth): crop by the official rule on FaceBoxes' box instead of dlib's landmarks") +
                  (sequence ? "; one static crop for all frames from every frame's box, as the official "
                              "preprocessing (see --crop)"
                            : ""))
      .option("pipnet",
              "converted PIPNet weights (python -m pixel3dmm.convert_preprocessing pipnet epoch59.pth "
              "--meanface meanface.txt), with --faceboxes: the official 98 landmarks (68 + pupils) "
              "instead of dlib's")
      .flag("no-official-jpeg",
            "with --faceboxes: use the decoded pixels as they are; by default the photo and the 512 crop go through "
            "quality-95 JPEG as the official pipeline's rgb/ and cropped/ files do")
      .option("masks",
              "how to make the fit masks: auto (segmentation when --segmentation is given, parser when "
              "--face-parser is, else landmarks+grabcut), landmarks+grabcut, landmarks, segmentation, parser",
              "auto")
      .option("segmentation",
              sequence ? "folder of label images in the official seg_og layout, one per source frame (00000.png, "
                         "...; each the frame's size or the square crop); the fit then uses the official masks from "
                         "their labels"
                       : "label image in the official facer/celebm layout (seg_og PNG: the photo's size or the square "
                         "crop); the fit then uses the official masks from its labels")
      .option("face-parser", std::string("facer's FaRL parser face_parsing.farl.celebm.main_ema_181500_jit.pt: parses "
                                         "each crop into the official label map (") +
                                 (sequence ? "OUT/seg_og/<frame>.png" : "seg_og.png") +
                                 "); the fit uses the official masks from it")
      .option("retinaface",
              "converted RetinaFace weights (python -m pixel3dmm.convert_preprocessing retinaface "
              "mobilenet0.25_Final.pth): the parser's five keypoints, as the official pipeline finds "
              "them (default: from the crop's 68 landmarks, ours)");
}

preprocess::PreprocessOptions preprocess_options(const Args& args) {
  preprocess::PreprocessOptions o;
  if (args.has("landmark-model")) o.landmark_model = args.get("landmark-model");
  if (args.has("faceboxes")) {
    o.crop = "official";
    o.faceboxes = args.get("faceboxes");
  }
  if (args.has("pipnet")) {
    PIXEL3DMM_CHECK_T(UsageError, args.has("faceboxes"),
                      "--pipnet runs on the official crop: give --faceboxes too (PIPNet's box comes from FaceBoxesV2)");
    o.pipnet = args.get("pipnet");
  }
  if (args.flag_set("no-official-jpeg")) {
    PIXEL3DMM_CHECK_T(UsageError, args.has("faceboxes"),
                      "--no-official-jpeg belongs to the official crop: give --faceboxes too (the landmarks crop "
                      "reads the photo as it is)");
    o.official_jpeg = false;
  }
  if (args.has("masks")) o.mask_method = args.get("masks");
  if (args.has("segmentation")) o.segmentation = args.get("segmentation");
  PIXEL3DMM_CHECK_T(UsageError, !args.has("retinaface") || args.has("face-parser"),
                    "--retinaface finds the face parser's keypoints: it needs --face-parser");
  if (args.has("face-parser")) {
    o.face_parser = args.get("face-parser");
    if (args.has("retinaface")) o.retinaface = args.get("retinaface");
    std::printf("face parser: %s, five keypoints from %s\n", o.face_parser.c_str(),
                args.has("retinaface") ? "RetinaFace on each crop (official)"
                                       : "the crop's 68 landmarks (ours; the official pipeline uses RetinaFace's: "
                                         "--retinaface)");
  }
  return o;
}

void declare_pipeline_options(Args& args, bool networks) {
  args.option("flame", "FLAME model (.npz/.safetensors, see `pixel3dmm convert`); default: the synthetic model");
  if (networks) {
    args.option("uv-weights", "converted UV network (.safetensors, its .json beside)")
        .option("normal-weights", "converted normal network (.safetensors, its .json beside)")
        .option("precision", kPrecisionHelp, "float32");
    declare_preprocess_options(args, false);
    args.option("max-side", "shrink larger photos to this long side first (pixels; 0 = no limit)", "4096");
  }
  args.option("config", "fit config JSON (fields of configs/fit.json; missing fields keep the official defaults)")
      .repeated("set", "override one fit setting, e.g. --set iters=300 --set loss.normal=500");
}

reconstruct::ReconstructorOptions pipeline_options(const Args& args) {
  reconstruct::ReconstructorOptions o;
  o.flame = args.get("flame");
  io::json cfg = args.has("config") ? io::read_json(args.get("config")) : io::json(fit::FitConfig{});
  io::apply_overrides(cfg, args.all("set"));
  o.fit = io::parse_config<fit::FitConfig>(cfg, args.has("config") ? args.get("config") : "fit settings");
  if (args.has("uv-weights") || args.has("normal-weights")) {
    o.uv_weights = args.get("uv-weights");
    o.normal_weights = args.get("normal-weights");
  }
  o.predict.precision = precision_option(args);
  o.preprocess = preprocess_options(args);
  if (args.has("max-side")) o.preprocess.max_image_side = args.get_int("max-side", 0);
  return o;
}

void print_preprocessing(const preprocess::PreprocessOptions& o) {
  if (o.crop == "official")
    std::printf("face box: FaceBoxesV2 (%s), the official crop rule%s\n", o.faceboxes.c_str(),
                o.official_jpeg ? "; photo and crop through quality-95 JPEG as the official files"
                                : "; decoded pixels as they are (--no-official-jpeg)");
  else
    std::printf("face box: dlib's face detector, crop from its landmark box\n");
  if (!o.pipnet.empty())
    std::printf("landmarks: PIPNet (%s), WFLW 98 -> 68 + pupils as the official tracker takes them\n",
                o.pipnet.c_str());
  else
    std::printf("landmarks: dlib's 68-point model, pupils by the dark-blob finder\n");
}

void declare_identity_options(Args& args) {
  args.option("mica", "converted MICA weights (python -m pixel3dmm.convert_mica mica.tar): each crop's MICA code "
                      "starts the identity and reg/shape pulls toward it, as the official fit does")
      .option("scrfd", "insightface's scrfd_10g_bnkps.onnx: MICA's five keypoints by SCRFD on each crop, as the "
                       "official preprocessing (default: from the crop's 68 landmarks)")
      .option("identity", "an identity code to use as the prior instead (.npy, 300 FLAME shape coefficients, "
                          "e.g. from `pixel3dmm identity`)")
      .option("identity-prior", "mica (the official default when --mica or --identity is given) or none", "mica");
}

identity::IdentityPriorOptions identity_options(const Args& args) {
  const std::string prior = args.get("identity-prior");
  PIXEL3DMM_CHECK_T(UsageError, prior == "mica" || prior == "none",
                    "--identity-prior: expected mica or none, found '", prior, "'");
  PIXEL3DMM_CHECK_T(UsageError, !(args.has("mica") && args.has("identity")),
                    "--mica and --identity are two sources of one prior: give one");
  identity::IdentityPriorOptions o;
  if (prior == "none") return o;
  PIXEL3DMM_CHECK_T(UsageError, !args.has("scrfd") || args.has("mica"), "--scrfd needs --mica");
  if (args.has("mica")) o.mica = args.get("mica");
  if (args.has("scrfd")) o.scrfd = args.get("scrfd");
  if (args.has("identity")) o.code = args.get("identity");
  return o;
}

void print_identity_prior(const identity::IdentityPrior& prior) {
  if (prior.enabled())
    std::printf("identity prior: %s\n", prior.describe().c_str());
  else
    std::printf("no identity prior was used (the official fit starts from MICA's code: give --mica or --identity)\n");
}

void declare_network_choice(Args& args, const std::string& purpose) {
  args.option("uv-weights", "converted UV network (.safetensors, its .json beside)" + purpose)
      .option("normal-weights", "converted normal network (with --uv-weights)")
      .flag("demo-networks", "the embedded demo networks instead (synthetic heads only; for trying it out)")
      .option("precision", kPrecisionHelp, "float32");
}

std::unique_ptr<predict::Predictor> chosen_predictor(const Args& args, bool required) {
  const bool uv = args.has("uv-weights"), normals = args.has("normal-weights");
  if (args.has("demo-networks")) {
    if (uv || normals)
      throw UsageError("--demo-networks replaces --uv-weights / --normal-weights: give one or the other");
    const auto demo = predict::demo_predictor();
    auto options = demo.options();
    options.precision = precision_option(args);
    return std::make_unique<predict::Predictor>(demo.uv_net(), demo.normals_net(), options);
  }
  if (uv != normals) throw UsageError("--uv-weights and --normal-weights go together (the fit needs both maps)");
  if (!uv) {
    if (required) throw UsageError("give --uv-weights and --normal-weights (converted networks), or --demo-networks");
    return nullptr;
  }
  predict::PredictorOptions options;
  options.precision = precision_option(args);
  return std::make_unique<predict::Predictor>(
      predict::Predictor::load(args.get("uv-weights"), args.get("normal-weights"), options));
}

std::vector<std::string> collect_images(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    const fs::path p(in);
    PIXEL3DMM_CHECK_T(FileNotFound, fs::exists(p), in, ": no such file or folder");
    if (fs::is_directory(p)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      PIXEL3DMM_CHECK(!found.empty(), in, ": the folder holds no images (.jpg, .png, .bmp, .tif, .webp, .pgm, .ppm)");
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(in);
    }
  }
  PIXEL3DMM_CHECK(!out.empty(), "no input images");
  return out;
}

void prepare_output_folder(const std::string& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  const fs::path probe = fs::path(folder) / ".pixel3dmm-write-test";
  bool ok = !ec && fs::is_directory(folder);
  if (ok) {
    std::ofstream f(probe);
    ok = static_cast<bool>(f << "ok");
  }
  fs::remove(probe, ec);
  PIXEL3DMM_CHECK_T(FileNotFound, ok, folder, ": the output folder cannot be created or written to");
}

fit::FitCallback fit_progress(const std::string& label, int total) {
  auto bar = std::make_shared<Progress>(label, total);
  auto done = std::make_shared<int>(0);
  return [bar, done, total](const fit::FitLogEntry& e) {
    ++*done;
    if (*done % 10 == 0 || *done == total) {
      char status[64];
      std::snprintf(status, sizeof status, "%s loss %.4g", e.stage.c_str(), e.total);
      bar->update(std::min(*done, total), status);
    }
    return true;
  };
}

ItemOutcome run_item(const std::string& input, const std::string& output, const std::function<double()>& work) {
  ItemOutcome r;
  r.input = input;
  r.output = output;
  const auto start = std::chrono::steady_clock::now();
  auto fail = [&](int code, const std::exception& e) {
    r.exit_code = code;
    r.status = e.what();
    std::fprintf(stderr, "pixel3dmm: error: %s\n", e.what());
  };
  try {
    r.final_loss = work();
  } catch (const NoFaceFound& e) {
    fail(kNoFace, e);
  } catch (const FileNotFound& e) {
    fail(kBadInput, e);
  } catch (const ValueError& e) {
    fail(kBadInput, e);
  } catch (const std::exception& e) {
    fail(kFailure, e);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

int print_summary(const std::vector<ItemOutcome>& items) {
  size_t width = 5;
  for (const auto& i : items) width = std::max(width, i.input.size());
  width = std::min<size_t>(width, 48);
  std::printf("\n%-*s %8s %11s  %s\n", static_cast<int>(width), "input", "seconds", "final loss", "result");
  int code = kOk, failed = 0, skipped = 0;
  for (const auto& i : items) {
    if (i.skipped) {
      ++skipped;
      continue;
    }
    std::string name = i.input.size() > width ? "..." + i.input.substr(i.input.size() - width + 3) : i.input;
    if (i.exit_code == kOk)
      std::printf("%-*s %8.1f %11.4g  %s\n", static_cast<int>(width), name.c_str(), i.seconds, i.final_loss,
                  i.output.c_str());
    else
      std::printf("%-*s %8.1f %11s  FAILED (exit %d): %s\n", static_cast<int>(width), name.c_str(), i.seconds, "-",
                  i.exit_code, i.status.c_str());
    if (i.exit_code != kOk && code == kOk) code = i.exit_code;
    failed += i.exit_code != kOk;
  }
  std::printf("%zu done, %d failed", items.size() - failed - skipped, failed);
  if (skipped > 0) std::printf(", %d already complete (skipped)", skipped);
  std::printf("\n");
  return code;
}

std::vector<ItemOutcome> for_each_image(
    const std::vector<std::string>& images, const std::string& out,
    const std::function<double(const std::string& image, const std::string& folder)>& work, const BatchShare& share,
    const std::function<bool(const std::string& folder)>& complete) {
  std::vector<std::string> used, folders;
  for (const auto& image : images) folders.push_back(item_folder(out, image, used));
  std::vector<ItemOutcome> outcomes;
  const auto mine = distributed::shard(static_cast<int64_t>(images.size()), share.rank, share.world_size);
  for (const int64_t k : mine) {
    const size_t i = static_cast<size_t>(k);
    const std::string& folder = folders[i];
    if (share.skip_complete && (complete ? complete(folder) : fs::is_directory(folder))) {
      ItemOutcome o;
      o.input = images[i];
      o.output = folder;
      o.status = "already complete";
      o.skipped = true;
      outcomes.push_back(o);
      continue;
    }
    std::printf("[%zu/%zu] %s\n", i + 1, images.size(), images[i].c_str());
    std::fflush(stdout);
    outcomes.push_back(run_item(images[i], folder, [&] { return work(images[i], folder); }));
  }
  return outcomes;
}

std::string item_folder(const std::string& out, const std::string& input, std::vector<std::string>& used) {
  const std::string stem = fs::path(input).stem().string();
  std::string name = stem;
  for (int k = 2; std::find(used.begin(), used.end(), name) != used.end(); ++k) name = stem + "-" + std::to_string(k);
  used.push_back(name);
  return (fs::path(out) / name).string();
}

}  // namespace pixel3dmm::cli
