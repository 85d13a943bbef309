// Preprocessing stages on Debian's dlib example photo 2008_001322.jpg (500 x 375, three faces): landmark model
// load, detection (with the automatic upsampling), the whole result with and without GrabCut, and the parts
// after detection (crop, pupils, masks) at 512 px. Skips with a message when the photo or model is missing.
// With converted official weights, `bench_preprocess FaceBoxesV2.safetensors pipnet.safetensors` also times the
// official path (FaceBoxesV2 on the photo, the official crop, FaceBoxes again on the 512 crop, PIPNet) on 2 threads;
// the figures do not depend on the weights' values, so seeded random weights time it as well.
// `--retinaface R --parser P` (anywhere on the command line) times the parser path on the 512 crop: RetinaFace's five
// keypoints, then FaceParser::labels (alignment, forward warp, the network, inverse warp of the logits, argmax). The
// network's share depends on the TorchScript file: a stand-in parser times everything but facer's FaRL network.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench_util.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/preprocess/face_parser.h"
#include "pixel3dmm/preprocess/official_crop.h"
#include "pixel3dmm/preprocess/pipnet.h"
#include "pixel3dmm/preprocess/preprocess.h"
#include "pixel3dmm/preprocess/retinaface.h"

namespace {

// Times RetinaFace and the face parser on a 512 crop (1 x 3 x S x S float RGB in [0, 1]), 2 threads.
void time_parser_path(const std::string& retinaface_path, const std::string& parser_path, const torch::Tensor& crop) {
  using namespace pixel3dmm;
  using namespace pixel3dmm::preprocess;
  set_num_threads(2);
  std::printf("parser path on the 512 crop, 2 threads (RetinaFace %s, parser %s):\n", retinaface_path.c_str(),
              parser_path.c_str());
  const RetinaFaceDetector retinaface(retinaface_path);
  const FaceParser parser(parser_path);
  const auto rgb8 = (crop * 255.0f).round().to(torch::kUInt8);
  std::printf("%-44s %10.1f ms\n", "  RetinaFace (network, decode, NMS)",
              bench::median_ms([&] { (void)retinaface.detect(rgb8); }));
  // The keypoints do not change the cost: a fixed plausible face when these weights find none.
  const auto faces = retinaface.detect(rgb8);
  const auto points =
      faces.empty()
          ? torch::tensor({180.f, 220.f, 330.f, 220.f, 256.f, 290.f, 195.f, 360.f, 318.f, 360.f}).view({1, 5, 2})
          : faces.front().points.view({1, 5, 2});
  std::printf("%-44s %10.1f ms\n", "  parser labels (align, warp, network, unwarp)",
              bench::median_ms([&] { (void)parser.labels(rgb8, points); }));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  using namespace pixel3dmm::preprocess;
  std::string retinaface_path, parser_path;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--retinaface" && i + 1 < argc) {
      retinaface_path = argv[++i];
    } else if (a == "--parser" && i + 1 < argc) {
      parser_path = argv[++i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  argc = static_cast<int>(rest.size());
  argv = rest.data();
  bench::print_header("preprocess (dlib HOG + 68 landmarks, 512 crop; photo 500 x 375, largest of 3 faces)");
  const std::string photo = "/usr/share/doc/libdlib19.1/examples/faces/2008_001322.jpg";
  std::error_code ec;
  if (!std::filesystem::exists(photo, ec) || !std::filesystem::exists(default_landmark_model_path(), ec)) {
    std::printf("skipped: %s or %s missing (Debian packages libdlib19.1, libdlib-data)\n", photo.c_str(),
                default_landmark_model_path().c_str());
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Preprocessor grabcut{PreprocessOptions{}};
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  PreprocessOptions lo;
  lo.mask_method = "landmarks";
  const Preprocessor landmarks_only(lo);
  const auto image = io::read_image(photo);
  const auto r = grabcut.image(image);
  std::printf("%-44s %10.1f ms\n", "load landmark model (once)", load_ms);
  std::printf("%-44s %10.1f ms\n", "detect (3 faces + landmarks)",
              bench::median_ms([&] { (void)grabcut.detector().detect(image); }));
  std::printf("%-44s %10.1f ms\n", "preprocess, masks landmarks+grabcut",
              bench::median_ms([&] { (void)grabcut.image(image); }));
  std::printf("%-44s %10.1f ms\n", "preprocess, masks landmarks",
              bench::median_ms([&] { (void)landmarks_only.image(image); }));
  const auto lm = r.landmarks[0];
  std::printf("%-44s %10.1f ms\n", "  crop 512", bench::median_ms([&] { (void)crop_image(image, r.crop_box, 512); }));
  std::printf("%-44s %10.1f ms\n", "  pupils", bench::median_ms([&] { (void)locate_pupils(r.crop, lm); }));
  std::printf("%-44s %10.1f ms\n", "  masks, landmarks+grabcut",
              bench::median_ms([&] { (void)masks_from_landmarks(r.crop, lm); }));
  LandmarkMaskOptions no_gc;
  no_gc.grabcut = false;
  std::printf("%-44s %10.1f ms\n", "  masks, landmarks",
              bench::median_ms([&] { (void)masks_from_landmarks(r.crop, lm, no_gc); }));
  if (!retinaface_path.empty() && !parser_path.empty()) time_parser_path(retinaface_path, parser_path, r.crop);
  if (argc < 3) {
    std::printf("(official path not timed: give converted FaceBoxesV2 and PIPNet weights as arguments)\n");
    return 0;
  }
  set_num_threads(2);
  std::printf("official path, 2 threads (FaceBoxesV2 %s, PIPNet %s):\n", argv[1], argv[2]);
  const FaceBoxesDetector faceboxes(argv[1]);
  const PipNetDetector pipnet(argv[2]);
  const auto bgr = (image[0].permute({1, 2, 0}).flip({2}) * 255.0f).round().to(torch::kUInt8).contiguous();
  const auto boxes = faceboxes.detect(bgr);
  if (boxes.empty()) {
    std::printf("skipped: FaceBoxes finds no face in the photo with these weights\n");
    return 0;
  }
  const auto crop = official_crop({boxes.front()}, bgr.size(0), bgr.size(1));
  const auto crop512 = official_crop_image(bgr, crop, 512);
  const auto box = pipnet_face_box(faceboxes.detect(crop512), 512, 512);
  std::printf("%-44s %10.1f ms\n", "  FaceBoxesV2 on the photo",
              bench::median_ms([&] { (void)faceboxes.detect(bgr); }));
  std::printf("%-44s %10.1f ms\n", "  official crop -> 512",
              bench::median_ms([&] { (void)official_crop_image(bgr, crop, 512); }));
  std::printf("%-44s %10.1f ms\n", "  FaceBoxesV2 on the 512 crop",
              bench::median_ms([&] { (void)faceboxes.detect(crop512); }));
  if (!box) {
    std::printf("skipped PIPNet: no box passes 0.99 on the crop with these weights\n");
    return 0;
  }
  std::printf("%-44s %10.1f ms\n", "  PIPNet (input, network, decode, merge)",
              bench::median_ms([&] { (void)pipnet.landmarks(crop512, *box); }));
  PreprocessOptions oo;
  oo.crop = "official";
  oo.faceboxes = argv[1];
  oo.pipnet = argv[2];
  oo.mask_method = "landmarks";
  const Preprocessor official(oo);
  std::printf("%-44s %10.1f ms\n", "preprocess official + PIPNet, masks landmarks",
              bench::median_ms([&] { (void)official.image(image); }));
  return 0;
}
