// `pixel3dmm identity`: face images (+ five keypoints) -> MICA's identity.npy (300 FLAME shape coefficients).
#include <cstdio>
#include <optional>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/identity/mica.h"
#include "pixel3dmm/identity/scrfd.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/npy.h"

namespace pixel3dmm::cli {
namespace {

int run_identity(const std::vector<std::string>& argv) {
  Args args("pixel3dmm identity",
            "Computes MICA's identity code (identity.npy: 300 float32 FLAME shape coefficients) from face images. "
            "Each image is either an aligned 112 x 112 ArcFace crop, or any image with its five keypoints "
            "(--keypoints: a .npy of shape 5 x 2 for one image or N x 5 x 2 for N images, in pixels: image-left "
            "eye, image-right eye, nose, image-left and image-right mouth corner), or keypoints found by insightface's "
            "SCRFD-10G (--scrfd scrfd_10g_bnkps.onnx, the official detector; frames without a face are skipped). "
            "Several images (sorted frames) give the float32 mean over every max(1, N/10)-th frame, as the official "
            "preprocessing and tracker do.");
  args.positional("images", "face images (frames in order)", 1)
      .option("mica", "converted MICA weights (python -m pixel3dmm.convert_mica mica.tar)")
      .option("keypoints", "five keypoints per image (.npy, 5 x 2 or N x 5 x 2); none = aligned 112 x 112 crops")
      .option("scrfd", "insightface's SCRFD-10G ONNX file (antelopev2 scrfd_10g_bnkps.onnx): detect the keypoints")
      .option("out", "output .npy", "identity.npy");
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  PIXEL3DMM_CHECK_T(UsageError, args.has("mica"), "--mica is required");
  PIXEL3DMM_CHECK_T(UsageError, !(args.has("keypoints") && args.has("scrfd")),
                    "--keypoints and --scrfd exclude each other (keypoints are either given or detected)");
  const auto& images = args.positionals();
  torch::Tensor keypoints;
  if (args.has("keypoints")) {
    const std::string path = args.get("keypoints");
    keypoints = io::read_npy(path).to(torch::kFloat32);
    if (keypoints.dim() == 2) keypoints = keypoints.unsqueeze(0);
    PIXEL3DMM_CHECK_FORMAT(keypoints.dim() == 3 && keypoints.size(0) == static_cast<int64_t>(images.size()) &&
                               keypoints.size(1) == 5 && keypoints.size(2) == 2,
                           path, "expected keypoints of shape [", images.size(),
                           ", 5, 2] (or [5, 2] for one image), found ", keypoints.sizes());
  }
  std::optional<identity::ScrfdDetector> scrfd;
  if (args.has("scrfd")) scrfd.emplace(args.get("scrfd"));
  auto mica = identity::load_mica(args.get("mica"));
  const auto frames = identity::identity_frames(static_cast<int64_t>(images.size()));
  torch::Tensor sum;
  size_t used = 0;
  for (const int64_t i : frames) {
    const auto& path = images[static_cast<size_t>(i)];
    const auto rgb =
        io::read_image(path)[0].clamp(0, 1).mul(255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
    torch::Tensor kps = keypoints.defined() ? keypoints[i] : torch::Tensor();
    if (scrfd) {
      kps = identity::detect_five_keypoints(*scrfd, rgb);
      if (!kps.defined()) {  // as the official MICA demo: the frame is skipped
        std::fprintf(stderr, "%s: no face found by SCRFD; frame skipped\n", path.c_str());
        continue;
      }
    }
    torch::Tensor code;
    try {
      code = identity::identity_code(mica, rgb, kps);
    } catch (const ValueError& e) {
      throw ValueError(path + ": " + e.what());
    }
    sum = sum.defined() ? sum + code : code;
    ++used;
  }
  PIXEL3DMM_CHECK_T(NoFaceFound, used > 0, "SCRFD (", args.get("scrfd"), ") found no face in any of the ",
                    frames.size(), " frame(s) MICA reads (", images.front(), ", ...)");
  const auto mean = sum / static_cast<float>(used);
  io::write_npy(args.get("out"), mean);
  std::printf("%s: identity of %zu of %zu image(s)\n", args.get("out").c_str(), used, images.size());
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("identity", "face images (+ 5 keypoints) -> MICA identity.npy (300 FLAME shape coefficients)",
                  run_identity);

}  // namespace pixel3dmm::cli
