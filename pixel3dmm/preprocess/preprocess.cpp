// The preprocessing pipeline: detect -> crop square -> landmarks and pupils in the crop -> masks. Everything after
// detection happens at crop resolution, so the cost past the detector does not depend on the photo's size.
#include "pixel3dmm/preprocess/preprocess.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/preprocess/jpeg_round_trip.h"
#include "pixel3dmm/preprocess/official_crop.h"

namespace pixel3dmm::preprocess {

using ::pixel3dmm::detail::concat;

namespace {

FaceDetectorOptions detector_options(const PreprocessOptions& o) {
  FaceDetectorOptions d;
  d.landmark_model = o.landmark_model;
  d.detect_max_side = o.detect_max_side;
  d.upsample = o.upsample;
  d.min_score = o.min_score;
  return d;
}

void check_options(const PreprocessOptions& o) {
  PIXEL3DMM_CHECK(o.crop_size >= 16 && o.crop_size <= 8192, "PreprocessOptions.crop_size: expected 16..8192, found ",
                  o.crop_size);
  PIXEL3DMM_CHECK(o.mask_method == "auto" || o.mask_method == "landmarks+grabcut" || o.mask_method == "landmarks" ||
                      o.mask_method == "segmentation" || o.mask_method == "parser",
                  "PreprocessOptions.mask_method: expected 'auto', 'landmarks+grabcut', 'landmarks', "
                  "'segmentation' or 'parser', found '",
                  o.mask_method, "'");
  PIXEL3DMM_CHECK(o.mask_method != "parser" || !o.face_parser.empty(),
                  "PreprocessOptions: mask_method 'parser' needs the parser's TorchScript file in `face_parser`");
  PIXEL3DMM_CHECK(o.segmentation.empty() || o.face_parser.empty(),
                  "PreprocessOptions: give either a label image (segmentation) or a face parser, not both");
  PIXEL3DMM_CHECK(o.retinaface.empty() || !o.face_parser.empty(),
                  "PreprocessOptions: RetinaFace's keypoints only serve the face parser; give `face_parser` too");
  PIXEL3DMM_CHECK(o.mask_method != "segmentation" || !o.segmentation.empty(),
                  "PreprocessOptions: mask_method 'segmentation' needs a label image path in `segmentation`");
  PIXEL3DMM_CHECK(o.crop == "landmarks" || o.crop == "official",
                  "PreprocessOptions.crop: expected 'landmarks' or 'official', found '", o.crop, "'");
  PIXEL3DMM_CHECK(o.crop != "official" || !o.faceboxes.empty(),
                  "PreprocessOptions: crop 'official' needs FaceBoxesV2 weights in `faceboxes` (convert FaceBoxesV2.pth "
                  "with python -m pixel3dmm.convert_preprocessing faceboxes)");
  // FaceBoxesV2 weights that would be silently ignored are a mistake, as a label image is (below).
  PIXEL3DMM_CHECK(o.faceboxes.empty() || o.crop == "official",
                  "PreprocessOptions: FaceBoxesV2 weights are given (faceboxes = '", o.faceboxes, "') but crop is '",
                  o.crop, "'; set crop 'official' (the CLI's --faceboxes does)");
  PIXEL3DMM_CHECK(o.pipnet.empty() || o.crop == "official",
                  "PreprocessOptions: PIPNet landmarks (pipnet = '", o.pipnet, "') run on the official crop: set crop "
                  "'official' and give FaceBoxesV2 weights in `faceboxes`");
  // A label image that would be silently ignored is a mistake, not a preference.
  PIXEL3DMM_CHECK(o.segmentation.empty() || o.mask_method == "auto" || o.mask_method == "segmentation",
                  "PreprocessOptions: a label image is given (segmentation = '", o.segmentation,
                  "') but mask_method is '", o.mask_method, "'; use 'auto' or 'segmentation'");
  PIXEL3DMM_CHECK(o.pupil_dark_fraction > 0 && o.pupil_dark_fraction <= 1,
                  "PreprocessOptions.pupil_dark_fraction: expected (0, 1], found ", o.pupil_dark_fraction);
}

/// 2 x 3 float64 affines: a after b.
torch::Tensor compose(const torch::Tensor& a, const torch::Tensor& b) {
  auto row = torch::tensor({0.0, 0.0, 1.0}, torch::kDouble).view({1, 3});
  return torch::matmul(torch::cat({a, row}), torch::cat({b, row})).slice(0, 0, 2).contiguous();
}

// The parser's five keypoints when RetinaFace is not given (ours): eye centres, nose tip, mouth corners of the 68
// landmarks (68 x 2), in RetinaFace's order (image-left eye first) -> 5 x 2 float32.
torch::Tensor keypoints_from_landmarks(const torch::Tensor& lm) {
  return torch::stack({lm.slice(0, 36, 42).mean(0), lm.slice(0, 42, 48).mean(0), lm[30], lm[48], lm[54]})
      .to(torch::kFloat);
}

// The official label map of the crop: five keypoints (RetinaFace's best face on the crop, as the official script
// runs it on cropped/*.jpg, or ours from the landmarks), then facer's parser.
void parse_crop(Preprocessed& p, const torch::Tensor& lm, const RetinaFaceDetector* retinaface,
                const FaceParser& parser) {
  const torch::Tensor rgb = (p.crop * 255.0f).round().clamp(0, 255).to(torch::kUInt8);
  torch::Tensor points;
  if (retinaface) {
    const auto faces = retinaface->detect(rgb);
    if (faces.empty()) {
      throw NoFaceFound(concat("no face found by RetinaFace (score > 0.8) on the ", p.crop.size(3), " x ",
                               p.crop.size(2), " crop of ", p.source.empty() ? "the image" : p.source,
                               "; the official pipeline writes no label map for such a frame"));
    }
    points = faces.front().points;  // several faces: the official script keeps the highest score's map
    p.keypoints = "retinaface";
  } else {
    points = keypoints_from_landmarks(lm);
    p.keypoints = "landmarks68";
  }
  p.labels = parser.labels(rgb, points.unsqueeze(0));
}

// The masks of one crop (uv, normal, fg, valid_bg): from the label image in the official layout when the method is
// "segmentation" (`affine` maps the source photo of H x W pixels to the crop), from the parser's labels of the crop
// when it is "parser", else from the crop's landmarks.
void make_masks(Preprocessed& p, const PreprocessOptions& o, const std::string& method, const torch::Tensor& lm,
                int64_t H, int64_t W, const RetinaFaceDetector* retinaface, const FaceParser* parser,
                const std::string& segmentation) {
  FaceMasks m;
  if (method == "parser") {
    PIXEL3DMM_CHECK(parser != nullptr, "attach_masks: mask method 'parser' without a loaded parser");
    parse_crop(p, lm, retinaface, *parser);
    m = masks_from_segmentation(p.labels[0], o.big_normal_mask);
  } else if (method == "segmentation") {
    m = masks_from_segmentation(
        labels_in_crop(read_segmentation(segmentation), p.affine, H, W, o.crop_size, segmentation), o.big_normal_mask);
  } else {
    LandmarkMaskOptions mopt;
    mopt.forehead = o.forehead;
    mopt.grabcut = method == "landmarks+grabcut";
    mopt.grabcut_iterations = o.grabcut_iterations;
    mopt.seed = o.seed;
    m = masks_from_landmarks(p.crop, lm, mopt);
  }
  p.uv_mask = m.uv_mask;
  p.normal_mask = m.normal_mask;
  p.fg_mask = m.fg_mask;
  p.valid_bg = m.valid_bg;
  p.mask_method = method;
}

}  // namespace

std::string resolved_mask_method(const PreprocessOptions& options) {
  if (options.mask_method != "auto") return options.mask_method;
  if (!options.face_parser.empty()) return "parser";
  return options.segmentation.empty() ? "landmarks+grabcut" : "segmentation";
}

torch::Tensor normalize_image(const torch::Tensor& image, const std::string& what) {
  PIXEL3DMM_CHECK(image.defined(), what, ": undefined tensor");
  torch::Tensor t = image;
  if (t.dim() == 2) t = t.unsqueeze(0);
  // H x W x C (NumPy, OpenCV, PIL order): channels last, and the first side too long to be a channel count.
  const auto is_channels = [](int64_t n) { return n == 1 || n == 3 || n == 4; };
  if (t.dim() == 3 && is_channels(t.size(2)) && !is_channels(t.size(0))) t = t.permute({2, 0, 1});
  if (t.dim() == 3) t = t.unsqueeze(0);
  PIXEL3DMM_CHECK(t.dim() == 4 && t.size(0) == 1, what, ": expected H x W, H x W x C, C x H x W or 1 x C x H x W, found ",
                  shape_string(image.sizes()));
  const int64_t C = t.size(1);
  PIXEL3DMM_CHECK(C == 1 || C == 3 || C == 4, what, ": expected 1, 3 or 4 channels, found ", C, " (shape ",
                  shape_string(image.sizes()), ")");
  PIXEL3DMM_CHECK(t.size(2) > 0 && t.size(3) > 0, what, ": empty image ", shape_string(image.sizes()));
  if (t.scalar_type() == torch::kByte) {
    t = t.to(torch::kFloat) / 255.0f;
  } else {
    PIXEL3DMM_CHECK(t.is_floating_point(), what, ": expected float in [0, 1] or uint8, found ", t.scalar_type());
    t = t.to(torch::kCPU, torch::kFloat);
    check_finite(t, what);
  }
  if (C == 1) t = t.expand({1, 3, t.size(2), t.size(3)});
  if (C == 4) t = t.slice(1, 0, 3);
  return t.to(torch::kCPU).contiguous();
}

Preprocessor::Preprocessor(const PreprocessOptions& options)
    : options_(options), detector_((check_options(options), detector_options(options))) {
  if (options_.crop == "official") faceboxes_ = std::make_shared<const FaceBoxesDetector>(options_.faceboxes);
  if (!options_.pipnet.empty()) pipnet_ = std::make_shared<const PipNetDetector>(options_.pipnet);
  if (!options_.retinaface.empty()) retinaface_ = std::make_shared<const RetinaFaceDetector>(options_.retinaface);
  if (!options_.face_parser.empty()) face_parser_ = std::make_shared<const FaceParser>(options_.face_parser);
}

std::vector<Preprocessed> Preprocessor::run(const torch::Tensor& image, const std::string& source, bool all) const {
  if (faceboxes_) return run_official(image, source);
  const std::string name = source.empty() ? "the image" : source;
  torch::Tensor img = normalize_image(image, source.empty() ? "image" : source);
  const int64_t H0 = img.size(2), W0 = img.size(3);
  const auto& o = options_;

  // Very large photos: shrink once; `shrink` maps source pixels to working pixels.
  torch::Tensor work = img;
  torch::Tensor shrink = torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 0.0}, torch::kDouble).view({2, 3});
  if (o.max_image_side > 0 && std::max(H0, W0) > o.max_image_side) {
    const double f = static_cast<double>(o.max_image_side) / static_cast<double>(std::max(H0, W0));
    const int w = std::max(1, static_cast<int>(std::lround(W0 * f))),
              h = std::max(1, static_cast<int>(std::lround(H0 * f)));
    torch::Tensor hwc = img[0].permute({1, 2, 0}).contiguous();
    auto out = torch::empty({h, w, 3}, torch::kFloat);
    cv::Mat dst(h, w, CV_32FC3, out.data_ptr<float>());
    cv::resize(cv::Mat(static_cast<int>(H0), static_cast<int>(W0), CV_32FC3, hwc.data_ptr<float>()), dst, dst.size(), 0,
               0, cv::INTER_AREA);
    work = out.permute({2, 0, 1}).unsqueeze(0).contiguous();
    const double sx = static_cast<double>(w) / W0, sy = static_cast<double>(h) / H0;
    shrink = torch::tensor({sx, 0.0, 0.5 * sx - 0.5, 0.0, sy, 0.5 * sy - 0.5}, torch::kDouble).view({2, 3});
  }
  const int64_t H = work.size(2), W = work.size(3);

  std::vector<Face> faces = detector_.detect(work);
  if (faces.empty()) {
    if (all) return {};
    throw NoFaceFound(concat("no face found in ", name, " (", W0, " x ", H0,
                             " pixels; dlib's frontal face "
                             "detector needs a roughly frontal face of at least about 40 pixels)"));
  }
  if (!all) faces.resize(1);

  CropOptions copt;
  copt.size = o.crop_size;
  copt.scale = o.crop_scale;
  copt.shift_up = o.crop_shift_up;
  copt.keep_inside = o.keep_inside;
  PupilOptions popt;
  popt.dark_fraction = o.pupil_dark_fraction;
  const std::string method = resolved_mask_method(o);
  const auto back =
      torch::tensor({1.0 / shrink[0][0].item<double>(), 1.0 / shrink[1][1].item<double>()}).to(torch::kFloat);

  std::vector<Preprocessed> results;
  for (const Face& face : faces) {
    Preprocessed p;
    p.crop_box = crop_box_from_landmarks(face.landmarks, H, W, copt);
    const torch::Tensor to_crop = crop_affine(p.crop_box, o.crop_size);
    p.crop = crop_image(work, p.crop_box, o.crop_size);
    torch::Tensor lm = apply_affine(face.landmarks, to_crop);
    p.landmarks = lm.unsqueeze(0);
    p.iris = locate_pupils(p.crop, lm, popt).unsqueeze(0);
    p.affine = compose(to_crop, shrink);
    p.source = source;
    make_masks(p, o, method, lm, H0, W0, retinaface_.get(), face_parser_.get(), o.segmentation);
    p.box = (face.box.view({2, 2}) * back).view({4});
    p.score = face.score;
    p.image_height = H0;
    p.image_width = W0;
    p.source = source;
    p.crop_method = "landmarks";
    p.landmark_method = "dlib";
    results.push_back(std::move(p));
  }
  return results;
}

namespace {

// The official pipeline reads 8-bit BGR: 1 x 3 x H x W float RGB -> H x W x 3 uint8 BGR (exact for 8-bit files).
torch::Tensor to_bgr8(const torch::Tensor& img) {
  return (img[0].permute({1, 2, 0}).flip({2}) * 255.0f).round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

// H x W x 3 uint8 BGR -> 1 x 3 x H x W float32 RGB in [0, 1].
torch::Tensor from_bgr8(const torch::Tensor& bgr) {
  return bgr.flip({2}).permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat).div(255.0f).contiguous();
}

}  // namespace

torch::Tensor Preprocessor::official_photo(const torch::Tensor& image, const std::string& source) const {
  const torch::Tensor bgr = to_bgr8(normalize_image(image, source.empty() ? "image" : source));
  return from_bgr8(options_.official_jpeg ? jpeg_round_trip(bgr) : bgr);
}

std::vector<FaceBox> Preprocessor::face_boxes(const torch::Tensor& photo) const {
  PIXEL3DMM_CHECK(faceboxes_ != nullptr, "Preprocessor::face_boxes: needs crop \"official\" (FaceBoxesV2 weights)");
  return faceboxes_->detect(to_bgr8(normalize_image(photo)));
}

Preprocessed Preprocessor::official_crop_of(const torch::Tensor& photo, const OfficialCrop& crop, const FaceBox& face,
                                            const std::string& source) const {
  const torch::Tensor img = normalize_image(photo, source.empty() ? "image" : source);
  const int64_t H = img.size(2), W = img.size(3);
  const torch::Tensor bgr = to_bgr8(img);
  const torch::Tensor region = official_crop_region(bgr, crop);
  const int64_t rh = region.size(0), rw = region.size(1);
  Preprocessed p;
  // Source pixels -> crop pixels for the region (c0, r0, rw x rh) resized to S x S (cv::resize pixel centres).
  const int64_t r0 = std::clamp<int64_t>(crop.ymin < 0 ? crop.ymin + H : crop.ymin, 0, H);
  const int64_t c0 = std::clamp<int64_t>(crop.xmin < 0 ? crop.xmin + W : crop.xmin, 0, W);
  const double S = static_cast<double>(options_.crop_size);
  const double ax = S / static_cast<double>(rw), ay = S / static_cast<double>(rh);
  p.affine = torch::tensor({ax, 0.0, (0.5 - static_cast<double>(c0)) * ax - 0.5, 0.0, ay,
                            (0.5 - static_cast<double>(r0)) * ay - 0.5},
                           torch::kDouble)
                 .view({2, 3});
  p.crop_box = CropBox{c0, r0, rw};
  torch::Tensor crop_bgr = official_crop_image(bgr, crop, options_.crop_size);
  // The official 512 crop is a JPEG file (`cropped/`) that every later stage reads.
  if (options_.official_jpeg && options_.crop_size == 512) crop_bgr = jpeg_round_trip(crop_bgr);
  p.crop = from_bgr8(crop_bgr);
  p.box = torch::tensor({static_cast<float>(face.x), static_cast<float>(face.y),
                         static_cast<float>(face.x + face.width), static_cast<float>(face.y + face.height)});
  p.score = face.score;
  p.image_height = H;
  p.image_width = W;
  p.source = source;
  p.crop_method = "official";
  return p;
}

bool Preprocessor::official_landmarks(Preprocessed& p, const torch::Tensor& photo) const {
  const auto& o = options_;
  const double S = static_cast<double>(o.crop_size);
  if (pipnet_) {
    // The official stage 2 on the official 512 crop, whatever crop_size is: FaceBoxes again (score >= 0.99), the
    // box moved down, PIPNet's 98 points as fractions of the crop; 68 + pupils taken as the tracker takes them,
    // times the crop side (the tracker multiplies by its image size).
    torch::Tensor crop512;
    if (o.crop_size == 512) {
      crop512 = to_bgr8(p.crop);
    } else {
      const torch::Tensor img = normalize_image(photo, p.source.empty() ? "image" : p.source);
      // The region's rectangle back from crop_box (official_crop_of stored its first row and column and width).
      const int64_t H = img.size(2), W = img.size(3);
      const double ay = p.affine[1][1].item<double>();
      const int64_t rh = std::llround(S / ay);
      OfficialCrop c;
      c.ymin = p.crop_box.y0;
      c.xmin = p.crop_box.x0;
      c.ymax = p.crop_box.y0 + rh;
      c.xmax = p.crop_box.x0 + p.crop_box.side;
      PIXEL3DMM_CHECK(c.ymax <= H && c.xmax <= W, "official_landmarks: crop outside the image");
      crop512 = official_crop_image(to_bgr8(img), c, 512);
      if (o.official_jpeg) crop512 = jpeg_round_trip(crop512);
    }
    const auto box = pipnet_face_box(faceboxes_->detect(crop512), 512, 512);
    if (!box) return false;
    p.wflw = pipnet_->landmarks(crop512, *box);
    const auto [lm68, pupils] = wflw_landmarks_and_pupils(p.wflw);
    p.landmarks = (lm68 * S).to(torch::kFloat).unsqueeze(0);
    p.iris = (pupils * S).to(torch::kFloat).unsqueeze(0);
    p.landmark_method = "pipnet";
    return true;
  }
  const torch::Tensor img = normalize_image(photo, p.source.empty() ? "image" : p.source);
  std::vector<Face> faces = detector_.detect(img);
  if (faces.empty()) return false;
  // The dlib face whose box centre is nearest to FaceBoxes' box centre (p.box: x0, y0, x1, y1).
  double fx = 0.5 * img.size(3), fy = 0.5 * img.size(2);
  if (p.box.defined()) {
    const auto b = p.box.to(torch::kDouble);
    fx = 0.5 * (b[0].item<double>() + b[2].item<double>());
    fy = 0.5 * (b[1].item<double>() + b[3].item<double>());
  }
  const Face* face = &faces.front();
  double best = 1e300;
  for (const Face& f : faces) {
    const auto b = f.box.to(torch::kDouble);
    const double dx = 0.5 * (b[0].item<double>() + b[2].item<double>()) - fx;
    const double dy = 0.5 * (b[1].item<double>() + b[3].item<double>()) - fy;
    if (dx * dx + dy * dy < best) {
      best = dx * dx + dy * dy;
      face = &f;
    }
  }
  const torch::Tensor lm = apply_affine(face->landmarks, p.affine);
  PupilOptions popt;
  popt.dark_fraction = o.pupil_dark_fraction;
  p.landmarks = lm.unsqueeze(0);
  p.iris = locate_pupils(p.crop, lm, popt).unsqueeze(0);
  p.landmark_method = "dlib";
  return true;
}

void Preprocessor::attach_masks(Preprocessed& p, const std::string& segmentation) const {
  PIXEL3DMM_CHECK(p.crop.defined() && p.landmarks.defined(),
                  "Preprocessor::attach_masks: needs the crop and landmarks");
  make_masks(p, options_, resolved_mask_method(options_), p.landmarks[0], p.image_height, p.image_width,
             retinaface_.get(), face_parser_.get(), segmentation.empty() ? options_.segmentation : segmentation);
}

// The official crop (official_crop.h) from FaceBoxes' best box on the whole photo; PIPNet's landmarks on the 512
// crop when its weights are given (official stage 2), else dlib's landmarks of the face nearest to that box, mapped
// into the crop.
std::vector<Preprocessed> Preprocessor::run_official(const torch::Tensor& image, const std::string& source) const {
  const std::string name = source.empty() ? "the image" : source;
  const torch::Tensor img = official_photo(image, source);
  const int64_t H = img.size(2), W = img.size(3);
  const auto boxes = face_boxes(img);
  if (boxes.empty()) {
    throw NoFaceFound(concat("no face found in ", name, " (", W, " x ", H, " pixels; FaceBoxesV2, score > 0.6)"));
  }
  const auto& fb = boxes.front();
  Preprocessed p = official_crop_of(img, official_crop({fb}, H, W), fb, source);
  if (!official_landmarks(p, img)) {
    if (pipnet_)
      throw NoFaceFound(concat("no face found in ", name, " by FaceBoxesV2 on the official 512 crop with score >= ",
                               kPipnetMinScore, " (the official gate before PIPNet)"));
    throw NoFaceFound(concat("no face found in ", name, " by dlib's detector inside FaceBoxes' box (", fb.x, ", ", fb.y,
                             ", ", fb.width, " x ", fb.height, "); the landmarks still come from dlib"));
  }
  attach_masks(p);
  return {std::move(p)};
}

std::vector<Preprocessed> Preprocessor::files_official_sequence(const std::vector<std::string>& paths) const {
  PIXEL3DMM_CHECK(faceboxes_ != nullptr, "files_official_sequence: needs crop \"official\" (FaceBoxesV2 weights)");
  std::vector<FaceBox> best;
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (const auto& path : paths) {
    const torch::Tensor img = official_photo(io::read_image(path), path);
    const auto boxes = face_boxes(img);
    if (boxes.empty())
      throw NoFaceFound(concat("no face found in ", path, " (", img.size(3), " x ", img.size(2),
                               " pixels; FaceBoxesV2, score > 0.6)"));
    best.push_back(boxes.front());
    sizes.emplace_back(img.size(2), img.size(3));
  }
  const bool one_size = std::all_of(sizes.begin(), sizes.end(), [&](const auto& s) { return s == sizes.front(); });
  std::optional<OfficialCrop> shared;
  if (one_size) shared = official_crop(best, sizes.front().first, sizes.front().second);
  std::vector<Preprocessed> out;
  for (size_t i = 0; i < paths.size(); ++i) {
    const torch::Tensor img = official_photo(io::read_image(paths[i]), paths[i]);
    const auto& fb = best[i];
    Preprocessed p =
        official_crop_of(img, shared ? *shared : official_crop({fb}, img.size(2), img.size(3)), fb, paths[i]);
    if (shared && paths.size() > 1) p.crop_method = "official-sequence";
    if (!official_landmarks(p, img))
      throw NoFaceFound(concat(
          "no landmarks found in ", paths[i], " in the ", shared ? "static crop of the set" : "crop",
          pipnet_ ? " (FaceBoxesV2 on the 512 crop, score >= 0.99, the gate before PIPNet)" : " (dlib's detector)"));
    attach_masks(p);
    out.push_back(std::move(p));
  }
  return out;
}

Preprocessed Preprocessor::image(const torch::Tensor& image, const std::string& source) const {
  return std::move(run(image, source, false).front());
}

std::vector<Preprocessed> Preprocessor::image_all(const torch::Tensor& image, const std::string& source) const {
  return run(image, source, true);
}

Preprocessed Preprocessor::file(const std::string& path) const { return image(io::read_image(path), path); }

std::vector<Preprocessed> Preprocessor::file_all(const std::string& path) const {
  return image_all(io::read_image(path), path);
}

Preprocessed preprocess_image(const torch::Tensor& image, const PreprocessOptions& options) {
  return Preprocessor(options).image(image);
}

Preprocessed preprocess_file(const std::string& path, const PreprocessOptions& options) {
  // Read first: a missing photo should be reported before a missing landmark model is looked for.
  torch::Tensor img = io::read_image(path);
  return Preprocessor(options).image(img, path);
}

std::vector<Preprocessed> preprocess_file_all(const std::string& path, const PreprocessOptions& options) {
  torch::Tensor img = io::read_image(path);
  return Preprocessor(options).image_all(img, path);
}

torch::Tensor draw_preprocessed(const Preprocessed& p) {
  check_shape(p.crop, {1, 3, -1, -1}, "draw_preprocessed: crop");
  const int S = static_cast<int>(p.crop.size(2)), SW = static_cast<int>(p.crop.size(3));
  torch::Tensor rgb = p.crop[0].to(torch::kCPU, torch::kFloat).clamp(0, 1);
  if (p.fg_mask.defined()) {
    check_shape(p.fg_mask, {1, S, SW}, "draw_preprocessed: fg_mask");
    rgb = rgb * (0.45f + 0.55f * p.fg_mask.to(torch::kFloat));
  }
  torch::Tensor hwc = (rgb * 255.0f).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  cv::Mat canvas(S, SW, CV_8UC3, hwc.data_ptr());
  const int thick = std::max(1, S / 256);
  auto outline = [&](const torch::Tensor& mask, const cv::Scalar& colour) {
    if (!mask.defined()) return;
    check_shape(mask, {1, S, SW}, "draw_preprocessed: mask");
    torch::Tensor m8 = (mask[0].to(torch::kCPU, torch::kFloat) > 0.5f).to(torch::kUInt8).mul(255).contiguous();
    cv::Mat m(S, SW, CV_8U, m8.data_ptr());
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(m.clone(), contours, cv::RETR_LIST, cv::CHAIN_APPROX_SIMPLE);
    cv::drawContours(canvas, contours, -1, colour, thick, cv::LINE_AA);
  };
  outline(p.valid_bg, cv::Scalar(60, 110, 255));
  outline(p.fg_mask, cv::Scalar(0, 230, 230));
  outline(p.uv_mask, cv::Scalar(255, 220, 0));
  if (p.landmarks.defined()) {
    auto l = p.landmarks.reshape({-1, 2}).to(torch::kCPU, torch::kDouble).contiguous();
    auto a = l.accessor<double, 2>();
    for (int64_t i = 0; i < l.size(0); ++i) {
      cv::circle(canvas, cv::Point(cvRound(a[i][0] * 16), cvRound(a[i][1] * 16)), 16 * (thick + 1),
                 cv::Scalar(40, 230, 40), -1, cv::LINE_AA, 4);
    }
  }
  if (p.iris.defined()) {
    auto l = p.iris.reshape({-1, 2}).to(torch::kCPU, torch::kDouble).contiguous();
    auto a = l.accessor<double, 2>();
    for (int64_t i = 0; i < l.size(0); ++i) {
      cv::drawMarker(canvas, cv::Point(cvRound(a[i][0]), cvRound(a[i][1])), cv::Scalar(255, 30, 30), cv::MARKER_CROSS,
                     6 * thick + 4, thick, cv::LINE_AA);
    }
  }
  return hwc.to(torch::kFloat).div(255.0f).permute({2, 0, 1}).unsqueeze(0).contiguous();
}

}  // namespace pixel3dmm::preprocess
