// Preprocessing stages on Debian's dlib example photo 2008_001322.jpg (500 x 375, three faces): landmark model
// load, detection (with the automatic upsampling), the whole result with and without GrabCut, and the parts
// after detection (crop, pupils, masks) at 512 px. Skips with a message when the photo or model is missing.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench_util.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/preprocess/preprocess.h"

int main() {
  using namespace pixel3dmm;
  using namespace pixel3dmm::preprocess;
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
  return 0;
}
