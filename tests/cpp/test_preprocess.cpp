// Preprocessing: official segmentation-label masks, crop geometry, pupils on synthetic eyes, and the dlib pipeline
// on Debian's example photos (skipped loudly when libdlib19.1's examples are not installed).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/preprocess/preprocess.h"
#include "test_photos.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::preprocess;
using pixel3dmm::test::max_abs_diff;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

const std::string& kFaces = pixel3dmm::test::kDlibFaces;

bool have_photos() { return pixel3dmm::test::have_dlib_photos(); }

/// One detector for all photo tests (the landmark model takes a second to load).
const Preprocessor& shared_preprocessor() {
  static const Preprocessor p{PreprocessOptions{}};
  return p;
}

bool inside_polygon(const torch::Tensor& lm, int from, int to, float x, float y) {
  std::vector<cv::Point2f> poly;
  for (int i = from; i < to; ++i) poly.emplace_back(lm[i][0].item<float>(), lm[i][1].item<float>());
  return cv::pointPolygonTest(poly, cv::Point2f(x, y), false) >= 0;
}

double total(const torch::Tensor& t) { return t.sum().item<double>(); }

/// A plausible frontal 68-point layout: face 100 px wide centred at (cx, cy).
torch::Tensor synthetic_landmarks(double cx, double cy, double size = 100.0) {
  auto l = torch::zeros({68, 2}, torch::kDouble);
  auto s = size / 100.0;
  for (int i = 0; i < 17; ++i) {  // jaw: half ellipse from ear to ear through the chin
    const double t = M_PI * i / 16.0;
    l[i][0] = cx - 50 * s * std::cos(t);
    l[i][1] = cy + 55 * s * std::sin(t) - 5 * s;
  }
  for (int i = 17; i < 27; ++i) {  // brows
    l[i][0] = cx - 45 * s + (i - 17) * 10 * s;
    l[i][1] = cy - 35 * s;
  }
  for (int i = 27; i < 36; ++i) {  // nose
    l[i][0] = cx + (i < 31 ? 0 : (i - 33) * 6 * s);
    l[i][1] = cy - 25 * s + (i < 31 ? (i - 27) * 8 * s : 28 * s);
  }
  const double eye_dx[6] = {-12, -6, 6, 12, 6, -6}, eye_dy[6] = {0, -5, -5, 0, 5, 5};
  for (int e = 0; e < 2; ++e) {
    const double ex = cx + (e == 0 ? -25 : 25) * s, ey = cy - 20 * s;
    for (int i = 0; i < 6; ++i) {
      l[36 + 6 * e + i][0] = ex + eye_dx[i] * s;
      l[36 + 6 * e + i][1] = ey + eye_dy[i] * s;
    }
  }
  for (int i = 48; i < 68; ++i) {  // mouth: outer ellipse 48-59, inner 60-67
    const bool outer = i < 60;
    const int n = outer ? 12 : 8, k = outer ? i - 48 : i - 60;
    const double t = 2 * M_PI * k / n;
    l[i][0] = cx - (outer ? 22 : 14) * s * std::cos(t);
    l[i][1] = cy + 28 * s - (outer ? 9 : 4) * s * std::sin(t);
  }
  return l.to(torch::kFloat);
}

}  // namespace

TEST_CASE("preprocess: segmentation labels give the official masks exactly", "[preprocess][masks]") {
  // Every label 0..20 once per row, in a 2 x 21 image (second row reversed).
  auto labels = torch::arange(21, torch::kLong).repeat({2, 1});
  labels[1] = labels[1].flip(0);
  const auto m = masks_from_segmentation(labels);
  const std::set<int> uv = {1, 2, 4, 5, 6, 7, 10, 12, 13}, normal = {2, 6, 7, 10, 11, 12, 13},
                      fg = {2, 6, 7, 8, 9, 10, 12, 13};
  for (const auto* t : {&m.uv_mask, &m.normal_mask, &m.fg_mask, &m.valid_bg}) {
    REQUIRE(t->sizes() == torch::IntArrayRef({1, 2, 21}));
    REQUIRE(t->scalar_type() == torch::kFloat);
  }
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 21; ++c) {
      const int label = static_cast<int>(labels[r][c].item<int64_t>());
      INFO("label " << label);
      CHECK(m.uv_mask[0][r][c].item<float>() == (uv.count(label) ? 1.0f : 0.0f));
      CHECK(m.normal_mask[0][r][c].item<float>() == (normal.count(label) ? 1.0f : 0.0f));
      CHECK(m.fg_mask[0][r][c].item<float>() == (fg.count(label) ? 1.0f : 0.0f));
      CHECK(m.valid_bg[0][r][c].item<float>() == (label <= 1 ? 1.0f : 0.0f));
    }
  }
  // big_normal_mask adds neck and ears; H x W x 3 takes channel 0; float labels must be whole numbers.
  const auto big = masks_from_segmentation(labels, true);
  for (int label : {1, 4, 5}) CHECK(big.normal_mask[0][0][label].item<float>() == 1.0f);
  auto rgb = torch::stack({labels, torch::zeros_like(labels), torch::full_like(labels, 2)}, 2);
  require_close(masks_from_segmentation(rgb).fg_mask, m.fg_mask, 0.0);
  require_close(masks_from_segmentation(labels.to(torch::kFloat).unsqueeze(0)).uv_mask, m.uv_mask, 0.0);
  require_throws_with<ValueError>([&] { masks_from_segmentation(labels.to(torch::kFloat) + 0.5); }, {"whole-number"});
}

TEST_CASE("preprocess: label PNGs: red channel of RGB, missing file named", "[preprocess][masks]") {
  TempDir dir;
  cv::Mat bgr(3, 4, CV_8UC3, cv::Scalar(9, 7, 2));  // B=9, G=7, R=2: the label is red's 2 (skin)
  bgr.at<cv::Vec3b>(1, 2) = cv::Vec3b(0, 0, 11);
  REQUIRE(cv::imwrite(dir.file("seg.png"), bgr));
  const auto labels = read_segmentation(dir.file("seg.png"));
  REQUIRE(labels.sizes() == torch::IntArrayRef({3, 4}));
  CHECK(labels[0][0].item<int64_t>() == 2);
  CHECK(labels[1][2].item<int64_t>() == 11);
  require_throws_with<FileNotFound>([&] { read_segmentation(dir.file("none.png")); }, {dir.file("none.png")});
  std::ofstream(dir.file("bad.png")) << "not a png";
  require_throws_with<FormatError>([&] { read_segmentation(dir.file("bad.png")); }, {dir.file("bad.png")});
}

TEST_CASE("preprocess: label images into the crop: photo-sized warped (20 outside), seg_og resized as Pillow",
          "[preprocess][masks]") {
  // A 6 x 8 photo's labels; the crop is the photo shifted right by 2 and down by 1 (integer: nearest is exact).
  const auto labels = torch::arange(48, torch::kLong).view({6, 8}) % 21;
  const auto affine = torch::tensor({1.0, 0.0, 2.0, 0.0, 1.0, 1.0}, torch::kDouble).view({2, 3});
  const auto crop = labels_in_crop(labels, affine, 6, 8, 9);
  REQUIRE(crop.sizes() == torch::IntArrayRef({9, 9}));
  REQUIRE(crop.scalar_type() == torch::kLong);
  for (int y = 0; y < 9; ++y) {
    for (int x = 0; x < 9; ++x) {
      const int sx = x - 2, sy = y - 1;
      const bool inside = sx >= 0 && sx < 8 && sy >= 0 && sy < 6;
      INFO("crop pixel " << x << ", " << y);
      CHECK(crop[y][x].item<int64_t>() == (inside ? labels[sy][sx].item<int64_t>() : kUnparsedLabel));
    }
  }
  // Outside the photo is in no mask: not background either.
  const auto m = masks_from_segmentation(crop);
  CHECK(m.valid_bg[0][0][0].item<float>() == 0.0f);
  CHECK((m.uv_mask + m.normal_mask + m.fg_mask + m.valid_bg)[0][0].sum().item<float>() == 0.0f);
  // A square map of another size is the crop (official seg_og): 8 -> 4 samples source pixels 1, 3, 5, 7 as
  // Pillow's NEAREST does (not 0, 2, 4, 6).
  const auto square = torch::arange(64, torch::kLong).view({8, 8});
  const auto small = labels_in_crop(square, affine, 6, 8, 4);
  const auto odd = torch::tensor({1, 3, 5, 7}, torch::kLong);
  REQUIRE(torch::equal(small, square.index_select(0, odd).index_select(1, odd)));
  require_throws_with<ValueError>([&] { labels_in_crop(torch::zeros({5, 7}, torch::kLong), affine, 6, 8, 4, "x.png"); },
                                  {"x.png", "7 x 5", "8 x 6"});
}

TEST_CASE("preprocess: crop square: scale, centring and the official keep-inside rule", "[preprocess][crop]") {
  const auto lm = synthetic_landmarks(300, 260);
  const auto lo = std::get<0>(lm.min(0)), hi = std::get<0>(lm.max(0));
  const double extent = std::max((hi[0] - lo[0]).item<double>(), (hi[1] - lo[1]).item<double>());
  CropOptions o;
  const CropBox b = crop_box_from_landmarks(lm, 600, 600, o);
  CHECK(b.side == std::llround(1.77 * extent));
  const double cx = b.x0 + 0.5 * (b.side - 1), cy = b.y0 + 0.5 * (b.side - 1);
  CHECK(std::abs(cx - 0.5 * (lo[0] + hi[0]).item<double>()) <= 0.5);
  CHECK(std::abs(cy - (0.5 * (lo[1] + hi[1]).item<double>() - 0.15 * extent)) <= 0.5);

  // Near the top-left corner: moved inside (no padding), as the official crop.
  const auto corner = synthetic_landmarks(70, 80);
  const CropBox in = crop_box_from_landmarks(corner, 600, 800, o);
  CHECK(in.x0 == 0);
  CHECK(in.y0 == 0);
  o.keep_inside = false;
  const CropBox out = crop_box_from_landmarks(corner, 600, 800, o);
  CHECK(out.x0 < 0);
  CHECK(out.y0 < 0);
  CHECK(out.side == in.side);
  // Larger than the image: centred on it, both sides padded.
  o.keep_inside = true;
  const CropBox big = crop_box_from_landmarks(synthetic_landmarks(50, 50, 100), 120, 100, o);
  CHECK(big.side > 120);
  CHECK(big.x0 == -(big.side - 100) / 2);
  CHECK(big.y0 == -(big.side - 120) / 2);
}

TEST_CASE("preprocess: the crop affine maps image pixels onto crop pixels", "[preprocess][crop]") {
  // A Gaussian spot at a sub-pixel position: its centre of mass lands where the affine says, when shrinking and
  // when enlarging, and padding is black.
  for (int64_t side : {200, 64}) {
    const double sx = 130.3, sy = 97.6;
    auto ys = torch::arange(240, torch::kDouble).view({-1, 1}), xs = torch::arange(320, torch::kDouble).view({1, -1});
    auto spot = torch::exp(-((xs - sx).pow(2) + (ys - sy).pow(2)) / (2 * 6.0 * 6.0)).to(torch::kFloat);
    auto image = spot.expand({1, 3, 240, 320}).contiguous();
    const CropBox box{static_cast<int64_t>(sx) - side / 2, static_cast<int64_t>(sy) - side / 3, side};
    const auto crop = crop_image(image, box, 128);
    REQUIRE(crop.sizes() == torch::IntArrayRef({1, 3, 128, 128}));
    const auto A = crop_affine(box, 128);
    const auto p = apply_affine(torch::tensor({sx, sy}, torch::kDouble), A);
    auto w = crop[0][0].to(torch::kDouble);
    auto cy = torch::arange(128, torch::kDouble).view({-1, 1}), cx = torch::arange(128, torch::kDouble).view({1, -1});
    const double mx = (w * cx).sum().item<double>() / w.sum().item<double>();
    const double my = (w * cy).sum().item<double>() / w.sum().item<double>();
    INFO("side " << side);
    CHECK(std::abs(mx - p[0].item<double>()) < 0.1);
    CHECK(std::abs(my - p[1].item<double>()) < 0.1);
    // Round trip through the inverse.
    require_close(apply_affine(p, invert_affine(A)), torch::tensor({sx, sy}, torch::kDouble), 1e-9);
  }
  // Outside the image: black.
  const auto crop = crop_image(torch::ones({1, 3, 10, 10}), CropBox{-10, 0, 20}, 20);
  CHECK(crop[0][0][5][2].item<float>() == 0.0f);
  CHECK(crop[0][0][5][15].item<float>() == 1.0f);
}

TEST_CASE("preprocess: pupils: the dark iris inside a synthetic eye, contour centroid for a blank eye",
          "[preprocess][pupils]") {
  const auto lm = synthetic_landmarks(100, 100, 200);
  auto image = torch::full({1, 3, 220, 220}, 0.8f);
  // Dark discs (radius 6) off the eye centres: image-left eye at +5 px in x, right eye blank.
  auto ys = torch::arange(220, torch::kFloat).view({-1, 1}), xs = torch::arange(220, torch::kFloat).view({1, -1});
  const float ex = lm[36][0].item<float>() * 0.5f + lm[39][0].item<float>() * 0.5f + 5.0f, ey = lm[36][1].item<float>();
  image.index_put_({0, torch::indexing::Slice()},
                   torch::where(((xs - ex).pow(2) + (ys - ey).pow(2)) < 36.0f, torch::full({}, 0.1f), image[0][0]));
  PupilMethod methods[2];
  const auto pupils = locate_pupils(image, lm, {}, methods);
  REQUIRE(pupils.sizes() == torch::IntArrayRef({2, 2}));
  CHECK(methods[0] == PupilMethod::DarkCentroid);
  CHECK(std::abs(pupils[0][0].item<float>() - ex) < 1.0f);
  CHECK(std::abs(pupils[0][1].item<float>() - ey) < 1.0f);
  CHECK(methods[1] == PupilMethod::ContourCentroid);
  const auto right = lm.slice(0, 42, 48).mean(0);
  CHECK(std::abs(pupils[1][0].item<float>() - right[0].item<float>()) < 0.5f);
  CHECK(std::abs(pupils[1][1].item<float>() - right[1].item<float>()) < 0.5f);
  // A mirrored landmark order (right eye listed first) still returns the image-left eye first.
  auto swapped = lm.clone();
  swapped.slice(0, 36, 42).copy_(lm.slice(0, 42, 48));
  swapped.slice(0, 42, 48).copy_(lm.slice(0, 36, 42));
  require_close(locate_pupils(image, swapped), pupils, 1e-5);
}

TEST_CASE("preprocess: landmark masks are nested as the official ones", "[preprocess][masks]") {
  const auto lm = synthetic_landmarks(128, 140, 120);
  auto image = torch::full({1, 3, 256, 256}, 0.2f);
  image.index_put_({0, 0}, face_region(lm, 256, 256)[0] * 0.6f + 0.2f);  // a reddish face on a dark background
  for (bool grabcut : {false, true}) {
    LandmarkMaskOptions o;
    o.grabcut = grabcut;
    const auto m = masks_from_landmarks(image, lm, o);
    INFO("grabcut " << grabcut);
    for (const auto* t : {&m.uv_mask, &m.normal_mask, &m.fg_mask, &m.valid_bg}) {
      REQUIRE(t->sizes() == torch::IntArrayRef({1, 256, 256}));
      REQUIRE(total(*t) > 100);
      REQUIRE(total((*t != 0) & (*t != 1)) == 0);
    }
    CHECK(total(m.uv_mask * (1 - m.fg_mask)) == 0);      // uv inside fg
    CHECK(total(m.uv_mask * (1 - m.normal_mask)) == 0);  // uv inside normal
    CHECK(total(m.valid_bg * m.fg_mask) == 0);           // background never on the face
    CHECK(total(m.valid_bg * m.normal_mask) == 0);
    // Eyes: in fg, not in uv / normal; the mouth interior: in normal, not in uv / fg; the nose tip in all three.
    const auto at = [](const torch::Tensor& m, const torch::Tensor& p) {
      return m[0][p[1].item<int64_t>()][p[0].item<int64_t>()].item<float>();
    };
    const auto eye = lm.slice(0, 36, 42).mean(0).round(), mouth = lm.slice(0, 60, 68).mean(0).round();
    CHECK(at(m.fg_mask, eye) == 1.0f);
    CHECK(at(m.uv_mask, eye) == 0.0f);
    CHECK(at(m.normal_mask, eye) == 0.0f);
    CHECK(at(m.normal_mask, mouth) == 1.0f);
    CHECK(at(m.uv_mask, mouth) == 0.0f);
    CHECK(at(m.fg_mask, mouth) == 0.0f);
    CHECK(at(m.uv_mask, lm[30].round()) == 1.0f);
    CHECK(m.valid_bg[0][2][2].item<float>() == 1.0f);
  }
}

TEST_CASE("preprocess: landmark model errors name the path", "[preprocess][detector]") {
  TempDir dir;
  FaceDetectorOptions o;
  o.landmark_model = dir.file("missing.dat");
  require_throws_with<FileNotFound>([&] { FaceDetector d(o); }, {dir.file("missing.dat")});
  std::ofstream(dir.file("corrupt.dat")) << "this is not a dlib model";
  o.landmark_model = dir.file("corrupt.dat");
  require_throws_with<FormatError>([&] { FaceDetector d(o); }, {dir.file("corrupt.dat")});
  // The environment variable is the default (restored afterwards, also when a check fails).
  struct EnvGuard {
    const char* name = "PIXEL3DMM_DLIB_LANDMARKS";
    bool had = false;
    std::string old;
    EnvGuard() {
      if (const char* v = std::getenv(name)) had = true, old = v;
      ::setenv(name, "/nonexistent/model.dat", 1);
    }
    ~EnvGuard() { had ? ::setenv(name, old.c_str(), 1) : ::unsetenv(name); }
  };
  {
    EnvGuard guard;
    CHECK(default_landmark_model_path() == "/nonexistent/model.dat");
    require_throws_with<FileNotFound>([&] { FaceDetector d; }, {"/nonexistent/model.dat"});
  }
  // Options are checked before anything is loaded.
  PreprocessOptions p;
  p.mask_method = "magic";
  require_throws_with<ValueError>([&] { Preprocessor x(p); }, {"mask_method", "magic"});
}

TEST_CASE("preprocess: photos: faces sorted largest first, landmarks inside their boxes", "[preprocess][photos]") {
  if (!have_photos()) return;
  const auto& pp = shared_preprocessor();
  // A crowd, shrunk to 500 px wide to keep the test fast (dlib then finds about 20 faces).
  const auto full = io::read_image(kFaces + "bald_guys.jpg");
  const auto image =
      torch::nn::functional::interpolate(full, torch::nn::functional::InterpolateFuncOptions()
                                                   .size(std::vector<int64_t>{full.size(2) * 500 / full.size(3), 500})
                                                   .mode(torch::kArea));
  const auto faces = pp.detector().detect(image);
  REQUIRE(faces.size() >= 3);
  for (size_t i = 0; i < faces.size(); ++i) {
    if (i > 0) {
      CHECK(faces[i - 1].area() >= faces[i].area());
      if (faces[i - 1].area() == faces[i].area()) CHECK(faces[i - 1].score >= faces[i].score);
    }
    const auto& f = faces[i];
    REQUIRE(f.landmarks.sizes() == torch::IntArrayRef({68, 2}));
    const float w = (f.box[2] - f.box[0]).item<float>();
    // dlib's box is tight: the jaw may stick out a little, the nose, eyes and mouth never.
    for (int k : {30, 36, 45, 51}) {
      CHECK(f.landmarks[k][0].item<float>() > f.box[0].item<float>());
      CHECK(f.landmarks[k][0].item<float>() < f.box[2].item<float>());
      CHECK(f.landmarks[k][1].item<float>() > f.box[1].item<float>());
      CHECK(f.landmarks[k][1].item<float>() < f.box[3].item<float>());
    }
    CHECK(std::abs(f.landmarks[30][0].item<float>() - 0.5f * (f.box[0] + f.box[2]).item<float>()) < 0.3f * w);
  }
  // Every face through the whole pipeline: three in this photo, largest first, the first one = file()'s face.
  const std::string path = kFaces + "2008_001322.jpg";
  const auto all = pp.file_all(path);
  REQUIRE(all.size() == 3);
  for (size_t i = 1; i < all.size(); ++i) {
    const auto a = all[i - 1].box, b = all[i].box;
    CHECK(((a[2] - a[0]) * (a[3] - a[1])).item<float>() >= ((b[2] - b[0]) * (b[3] - b[1])).item<float>());
    CHECK(all[i].source == path);
  }
  require_close(all[0].landmarks, pp.file(path).landmarks, 0.0);
}

TEST_CASE("preprocess: photos: one face preprocessed consistently", "[preprocess][photos]") {
  if (!have_photos()) return;
  const auto& pp = shared_preprocessor();
  const std::string path = kFaces + "2008_001322.jpg";
  const auto image = io::read_image(path);
  const auto r = pp.file(path);
  CHECK(r.source == path);
  REQUIRE(r.crop.sizes() == torch::IntArrayRef({1, 3, 512, 512}));
  REQUIRE(r.landmarks.sizes() == torch::IntArrayRef({1, 68, 2}));
  REQUIRE(r.iris.sizes() == torch::IntArrayRef({1, 2, 2}));
  REQUIRE(r.affine.sizes() == torch::IntArrayRef({2, 3}));
  CHECK(r.image_height == image.size(2));
  CHECK(r.image_width == image.size(3));
  // The crop's landmarks are the photo's landmarks through the affine.
  const auto faces = pp.detector().detect(image);
  REQUIRE(!faces.empty());
  require_close(r.landmarks[0], apply_affine(faces[0].landmarks, r.affine), 1e-3);
  // And the crop shows the photo there: colours at the landmarks agree (bilinear sampling of both).
  const auto inv = invert_affine(r.affine);
  auto sample = [](const torch::Tensor& img, const torch::Tensor& xy) {
    const int64_t H = img.size(2), W = img.size(3);
    auto grid = torch::stack({xy.select(1, 0) / (W - 1) * 2 - 1, xy.select(1, 1) / (H - 1) * 2 - 1}, 1);
    return torch::nn::functional::grid_sample(img, grid.view({1, 1, -1, 2}).to(torch::kFloat),
                                              torch::nn::functional::GridSampleFuncOptions().align_corners(true));
  };
  const auto in_crop = sample(r.crop, r.landmarks[0]);
  const auto in_photo = sample(image, apply_affine(r.landmarks[0], inv));
  CHECK((in_crop - in_photo).abs().mean().item<float>() < 0.04f);
  // Framing: the face fills the middle of the crop, eyes in the upper half.
  const auto lm = r.landmarks[0];
  const float eye_y = lm.slice(0, 36, 48).select(1, 1).mean().item<float>();
  CHECK(eye_y > 150);
  CHECK(eye_y < 300);
  const float jaw = (lm[16][0] - lm[0][0]).item<float>();
  CHECK(jaw > 200);
  CHECK(jaw < 330);
  // Pupils inside their eye contours, image-left first.
  const auto iris = r.iris[0];
  CHECK(inside_polygon(lm, 36, 42, iris[0][0].item<float>(), iris[0][1].item<float>()));
  CHECK(inside_polygon(lm, 42, 48, iris[1][0].item<float>(), iris[1][1].item<float>()));
  // Masks: non-empty, nested, the background away from the face.
  CHECK(total(r.uv_mask) > 20000);
  CHECK(total(r.valid_bg) > 5000);
  CHECK(total(r.uv_mask * (1 - r.fg_mask)) == 0);
  CHECK(total(r.uv_mask * (1 - r.normal_mask)) == 0);
  CHECK(total(r.valid_bg * r.fg_mask) == 0);
  // The picture helper.
  const auto pic = draw_preprocessed(r);
  REQUIRE(pic.sizes() == r.crop.sizes());
  CHECK(total((pic - r.crop).abs()) > 0);
}

TEST_CASE("preprocess: photos: gray, RGBA and 16-bit files give the same face", "[preprocess][photos]") {
  if (!have_photos()) return;
  const auto& pp = shared_preprocessor();
  TempDir dir;
  const cv::Mat bgr = cv::imread(kFaces + "2008_001322.jpg");
  cv::Mat gray, bgra, wide;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  bgr.convertTo(wide, CV_16U, 257.0);
  REQUIRE(cv::imwrite(dir.file("rgb.png"), bgr));
  REQUIRE(cv::imwrite(dir.file("gray.png"), gray));
  REQUIRE(cv::imwrite(dir.file("rgba.png"), bgra));
  REQUIRE(cv::imwrite(dir.file("wide.png"), wide));
  const auto ref = pp.file(dir.file("rgb.png"));
  for (const char* name : {"gray.png", "rgba.png", "wide.png"}) {
    INFO(name);
    const auto r = pp.file(dir.file(name));
    REQUIRE(r.crop.sizes() == ref.crop.sizes());
    // RGBA and 16-bit decode to the same values; gray is the luma detection runs on anyway (its pupils and
    // masks see no colour, so only the landmarks are compared).
    require_close(r.landmarks, ref.landmarks, std::string(name) == "gray.png" ? 1.0 : 1e-4);
    if (std::string(name) != "gray.png") require_close(r.crop, ref.crop, 1e-5);
  }
}

TEST_CASE("preprocess: photos: a sideways JPEG with an EXIF orientation is turned upright", "[preprocess][photos]") {
  if (!have_photos()) return;
  const auto& pp = shared_preprocessor();
  TempDir dir;
  const cv::Mat bgr = cv::imread(kFaces + "2008_001322.jpg");
  cv::Mat sideways;
  cv::rotate(bgr, sideways, cv::ROTATE_90_COUNTERCLOCKWISE);  // stored sideways; orientation 6 turns it back
  const std::vector<int> q = {cv::IMWRITE_JPEG_QUALITY, 98};
  REQUIRE(cv::imwrite(dir.file("upright.jpg"), bgr, q));
  REQUIRE(cv::imwrite(dir.file("plain.jpg"), sideways, q));
  std::ifstream in(dir.file("plain.jpg"), std::ios::binary);
  std::string jpg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const unsigned char
      app1[] = {0xFF, 0xE1, 0x00, 0x22, 'E',  'x',  'i',  'f',  0,    0,    'I',  'I',  0x2A,
                0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01, 0x00,
                0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};  // one IFD entry: 0x0112 (orientation) = 6
  jpg.insert(2, reinterpret_cast<const char*>(app1), sizeof(app1));
  std::ofstream(dir.file("rotated.jpg"), std::ios::binary) << jpg;
  const auto ref = pp.file(dir.file("upright.jpg"));
  const auto r = pp.file(dir.file("rotated.jpg"));
  CHECK(r.image_height == bgr.rows);
  CHECK(r.image_width == bgr.cols);
  // Same face, compared in photo pixels: JPEG blocks fall differently on the rotated pixels and dlib's landmarks
  // are whole pixels, so allow a pixel or two. (Without the orientation the sideways face is not found at all.)
  const auto a = apply_affine(r.landmarks[0], invert_affine(r.affine));
  const auto b = apply_affine(ref.landmarks[0], invert_affine(ref.affine));
  CHECK((a - b).abs().mean().item<double>() < 2.0);
}

TEST_CASE("preprocess: photos: no face is an error naming the file", "[preprocess][photos]") {
  if (!have_photos()) return;
  const auto& pp = shared_preprocessor();
  const std::string path = kFaces + "dogs.jpg";
  require_throws_with<ValueError>([&] { pp.file(path); }, {"no face found in", path});
  CHECK(pp.file_all(path).empty());
  require_throws_with<FileNotFound>([&] { preprocess_file(kFaces + "no-such-photo.jpg"); }, {"no-such-photo.jpg"});
}

TEST_CASE("preprocess: photos: a large photo shrunk to max_image_side maps back to its own pixels",
          "[preprocess][photos]") {
  if (!have_photos()) return;
  const auto& pp = shared_preprocessor();
  const std::string path = kFaces + "Tom_Cruise_avp_2014_4.jpg";
  const auto image = io::read_image(path);
  // Twice as large as the file: a "big" photo with a known answer (the file's own result, doubled).
  const auto big =
      torch::nn::functional::interpolate(image, torch::nn::functional::InterpolateFuncOptions()
                                                    .size(std::vector<int64_t>{image.size(2) * 2, image.size(3) * 2})
                                                    .mode(torch::kBilinear)
                                                    .align_corners(false));
  PreprocessOptions o;
  o.max_image_side = image.size(2);  // exactly the file's size again
  o.mask_method = "landmarks";
  const Preprocessor small(o);
  const auto r = small.image(big, "big");
  const auto ref = pp.image(image, "ref");
  CHECK(r.image_height == big.size(2));
  CHECK(r.image_width == big.size(3));
  // Landmarks back in the big photo's pixels = the reference's, doubled (pixel centres: 2x + 0.5).
  const auto back = apply_affine(r.landmarks[0], invert_affine(r.affine));
  const auto expect = apply_affine(ref.landmarks[0], invert_affine(ref.affine)) * 2 + 0.5;
  // dlib's landmarks are whole pixels, and the blur of the up-and-down sampling moves the weak jaw and brow points by a
  // few.
  CHECK((back - expect).abs().mean().item<double>() < 2.5);
  CHECK((back - expect).slice(0, 27).abs().max().item<double>() < 5.0);
  CHECK(max_abs_diff(r.box, ref.box * 2) < 4.0);
}
