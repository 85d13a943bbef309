#include "pixel3dmm/track/frame_source.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/preprocess/crop.h"
#include "pixel3dmm/preprocess/masks.h"
#include "pixel3dmm/preprocess/preprocess.h"
#include "pixel3dmm/preprocess/pupils.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"

namespace pixel3dmm::track {
namespace fs = std::filesystem;
namespace F = torch::nn::functional;

std::vector<std::string> list_image_files(const std::string& folder) {
  static const std::vector<std::string> kExt = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (std::find(kExt.begin(), kExt.end(), ext) != kExt.end()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct FrameSource::Impl {
  std::string path;
  int64_t every = 1, max_frames = -1, returned = 0, position = 0;
  std::vector<std::string> files;  // folder mode
  cv::VideoCapture video;          // video mode
  bool is_video = false;
  double fps = 25.0;
};

FrameSource::FrameSource(const std::string& path, int64_t every, int64_t max_frames) : impl_(new Impl) {
  PIXEL3DMM_CHECK_T(ValueError, every >= 1, "frame source: every must be >= 1, got ", every);
  impl_->path = path;
  impl_->every = every;
  impl_->max_frames = max_frames;
  if (!fs::exists(path)) throw FileNotFound(path + ": no such video file or image folder");
  if (fs::is_directory(path)) {
    impl_->files = list_image_files(path);
    PIXEL3DMM_CHECK_T(ValueError, !impl_->files.empty(), path,
                      ": the folder holds no images (png, jpg, jpeg, bmp, tif, tiff, webp)");
    return;
  }
  impl_->is_video = true;
  // Only the backends that read files: cv::CAP_ANY would also probe camera backends (gphoto2 scans the USB bus for
  // a second and leaks what it allocates there) whenever no file backend takes the file.
  bool opened = false;
  for (const int api : {cv::CAP_FFMPEG, cv::CAP_GSTREAMER, cv::CAP_OPENCV_MJPEG}) {
    opened = impl_->video.open(path, api) && impl_->video.isOpened();
    if (opened) break;
  }
  if (!opened)
    throw ValueError(path + ": OpenCV cannot open this file as a video (unknown format or codec; an image folder "
                            "works too)");
  const double fps = impl_->video.get(cv::CAP_PROP_FPS);
  if (fps > 0 && std::isfinite(fps)) impl_->fps = fps;
}

FrameSource::~FrameSource() = default;
FrameSource::FrameSource(FrameSource&&) noexcept = default;
FrameSource& FrameSource::operator=(FrameSource&&) noexcept = default;

bool FrameSource::next(torch::Tensor& frame) {
  Impl& s = *impl_;
  if (s.max_frames >= 0 && s.returned >= s.max_frames) return false;
  if (!s.is_video) {
    if (s.position >= static_cast<int64_t>(s.files.size())) return false;
    frame = io::read_image(s.files[static_cast<size_t>(s.position)]);
    s.position += s.every;
    ++s.returned;
    return true;
  }
  cv::Mat bgr;
  for (;;) {
    if (!s.video.read(bgr) || bgr.empty()) return false;
    const bool keep = s.position % s.every == 0;
    ++s.position;
    if (keep) break;
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, bgr.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
  frame = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8)
              .permute({2, 0, 1})
              .unsqueeze(0)
              .to(torch::kFloat)
              .div(255.0)
              .contiguous();
  ++s.returned;
  return true;
}

int64_t FrameSource::count() const { return impl_->returned; }
bool FrameSource::is_video() const { return impl_->is_video; }
double FrameSource::fps() const { return impl_->fps; }
const std::string& FrameSource::path() const { return impl_->path; }

// ---------------------------------------------------------------------------------------------------------------
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

std::vector<preprocess::CropBox> smooth_boxes(const std::vector<preprocess::CropBox>& boxes, int radius) {
  const int64_t n = static_cast<int64_t>(boxes.size());
  if (radius <= 0 || n < 2) return boxes;
  std::vector<preprocess::CropBox> out(boxes.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = std::max<int64_t>(0, i - radius), b = std::min(n - 1, i + radius);
    std::vector<double> cx, cy, side;
    for (int64_t j = a; j <= b; ++j) {
      const auto& x = boxes[static_cast<size_t>(j)];
      cx.push_back(x.x0 + 0.5 * x.side);
      cy.push_back(x.y0 + 0.5 * x.side);
      side.push_back(static_cast<double>(x.side));
    }
    preprocess::CropBox& o = out[static_cast<size_t>(i)];
    o.side = std::max<int64_t>(1, std::llround(median(side)));
    o.x0 = std::llround(median(cx) - 0.5 * o.side);
    o.y0 = std::llround(median(cy) - 0.5 * o.side);
  }
  return out;
}

std::vector<preprocess::FaceBox> smooth_face_boxes(const std::vector<preprocess::FaceBox>& boxes, int radius) {
  const int64_t n = static_cast<int64_t>(boxes.size());
  if (radius <= 0 || n < 2) return boxes;
  std::vector<preprocess::FaceBox> out = boxes;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = std::max<int64_t>(0, i - radius), b = std::min(n - 1, i + radius);
    std::vector<double> cx, cy, w, h;
    for (int64_t j = a; j <= b; ++j) {
      const auto& x = boxes[static_cast<size_t>(j)];
      cx.push_back(x.x + 0.5 * x.width);
      cy.push_back(x.y + 0.5 * x.height);
      w.push_back(static_cast<double>(x.width));
      h.push_back(static_cast<double>(x.height));
    }
    preprocess::FaceBox& o = out[static_cast<size_t>(i)];
    o.width = std::max<int64_t>(1, std::llround(median(w)));
    o.height = std::max<int64_t>(1, std::llround(median(h)));
    o.x = std::llround(median(cx) - 0.5 * static_cast<double>(o.width));
    o.y = std::llround(median(cy) - 0.5 * static_cast<double>(o.height));
  }
  return out;
}

namespace {

// Crops waiting for the network: predicted in batches, turned into fit targets (resized once to map_size).
class TargetBatcher {
 public:
  TargetBatcher(const predict::Predictor& predictor, const FrontEndOptions& o, VideoTargets& v,
                const FrontEndCallback& progress)
      : predictor_(predictor), o_(o), v_(v), progress_(progress) {}

  // without_landmarks: the fit gets no landmarks or pupils for this frame (all zero: masked).
  void add(preprocess::Preprocessed p, bool without_landmarks = false) {
    pending_.push_back(std::move(p));
    blank_.push_back(without_landmarks);
    if (static_cast<int>(pending_.size()) >= o_.predict_batch) flush();
  }

  void flush() {
    if (pending_.empty()) return;
    std::vector<torch::Tensor> crops;
    for (const auto& p : pending_) crops.push_back(p.crop);
    const predict::Predictions batch = predictor_.predict(torch::cat(crops));
    for (size_t j = 0; j < pending_.size(); ++j) {
      predict::Predictions one;
      const auto row = static_cast<int64_t>(j);
      one.uv = batch.uv.slice(0, row, row + 1);
      one.normals = batch.normals.slice(0, row, row + 1);
      fit::FitTarget t = reconstruct::make_target(pending_[j], one);
      if (o_.map_size > 0 && t.uv.size(-1) != o_.map_size) {
        // The fitter's own resize (bicubic, antialiased; Pillow-position nearest for masks), done once here to keep
        // memory low.
        const std::vector<int64_t> s{o_.map_size, o_.map_size};
        auto map = [&](const torch::Tensor& x) {
          return F::interpolate(
              x, F::InterpolateFuncOptions().size(s).mode(torch::kBicubic).align_corners(false).antialias(true));
        };
        auto mask = [&](const torch::Tensor& x) {
          return torch::_upsample_nearest_exact2d(x.unsqueeze(1), s).squeeze(1);  // Pillow's NEAREST positions
        };
        const double scale = double(o_.map_size) / double(t.uv.size(-1));
        t.uv = map(t.uv);
        t.normals = map(t.normals);
        t.image = map(t.image).clamp(0, 1);
        for (auto* m : {&t.uv_mask, &t.normal_mask, &t.fg_mask, &t.valid_bg}) *m = mask(*m);
        const std::string& method = pending_[j].landmark_method;
        t.landmarks = reconstruct::landmarks_to_size(t.landmarks, scale, method);
        if (t.iris.defined()) t.iris = reconstruct::landmarks_to_size(t.iris, scale, method);
      }
      if (blank_[j]) {
        // The official tracker reads a missing landmark file as zeros, which masks every landmark and both pupils.
        t.landmarks = torch::zeros_like(t.landmarks);
        if (t.iris.defined()) t.iris = torch::zeros_like(t.iris);
      }
      v_.frames.push_back(std::move(t));
    }
    pending_.clear();
    blank_.clear();
    if (progress_) progress_("predict", static_cast<int64_t>(v_.frames.size()));
  }

 private:
  const predict::Predictor& predictor_;
  const FrontEndOptions& o_;
  VideoTargets& v_;
  const FrontEndCallback& progress_;
  std::vector<preprocess::Preprocessed> pending_;
  std::vector<bool> blank_;
};

// The official seg_og file of source frame `index` in `folder` (the tracker's frames are numbered by the source, so
// --every keeps matching).
std::string frame_file(const std::string& folder, int64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(index));
  return (fs::path(folder) / name).string();
}

// Masks of one frame by the method: the frame's label file of the segmentation folder, or the preprocessor's rule.
void frame_masks(preprocess::Preprocessed& p, const preprocess::Preprocessor& preprocessor, const std::string& method,
                 const FrontEndOptions& o, int64_t i) {
  const auto& po = preprocessor.options();
  preprocessor.attach_masks(p, method == "segmentation" ? frame_file(po.segmentation, i * o.every) : "");
  if (p.labels.defined() && !o.label_folder.empty()) {
    const torch::Tensor labels = p.labels.reshape({1, 1, p.labels.size(-2), p.labels.size(-1)});
    io::write_image(frame_file(o.label_folder, i * o.every), labels.to(torch::kFloat).div(255.0f));
  }
}

// The nearest frame (earlier on a tie) with found[k], or -1.
int64_t nearest_found(const std::vector<bool>& found, int64_t i) {
  const int64_t n = static_cast<int64_t>(found.size());
  if (found[static_cast<size_t>(i)]) return i;
  for (int64_t d = 1; d < n; ++d) {
    if (i - d >= 0 && found[static_cast<size_t>(i - d)]) return i - d;
    if (i + d < n && found[static_cast<size_t>(i + d)]) return i + d;
  }
  return -1;
}

VideoTargets load_official(const std::string& path, const preprocess::Preprocessor& preprocessor,
                           const predict::Predictor& predictor, const FrontEndOptions& o, bool static_crop,
                           const FrontEndCallback& progress) {
  VideoTargets v;
  v.crop_method = static_crop ? "official-sequence" : "official-smoothed";
  v.mask_method = preprocess::resolved_mask_method(preprocessor.options());
  // How errors name frame i (its index in the source, before --every).
  auto frame_name = [&](int64_t i) { return path + " frame " + std::to_string(i * o.every); };

  // Pass 1: FaceBoxes' best box on every frame (the official stage raises without one).
  int64_t height = 0, width = 0;
  std::vector<std::pair<int64_t, int64_t>> sizes;  // per frame (height, width)
  {
    FrameSource source(path, o.every, o.max_frames);
    v.fps = source.fps() / static_cast<double>(o.every);
    torch::Tensor frame;
    while (source.next(frame)) {
      const int64_t i = source.count() - 1;
      if (i == 0) height = frame.size(2), width = frame.size(3);
      sizes.emplace_back(frame.size(2), frame.size(3));
      PIXEL3DMM_CHECK_T(ValueError, !static_crop || (frame.size(2) == height && frame.size(3) == width), path,
                        ": frame ", i * o.every, " is ", frame.size(3), " x ", frame.size(2), " pixels, frame 0 ",
                        width, " x ", height, "; one static crop needs one frame size (use --crop smoothed)");
      frame = preprocessor.official_photo(frame, frame_name(i));
      const auto boxes = preprocessor.face_boxes(frame);
      PIXEL3DMM_CHECK_T(NoFaceFound, !boxes.empty(), "no face found by FaceBoxesV2 in frame ", i * o.every, " of ",
                        path, " (the official static crop needs a detection in every frame)");
      v.face_boxes.push_back(boxes.front());
      if (progress) progress("detect", source.count());
    }
  }
  const int64_t n = static_cast<int64_t>(v.face_boxes.size());
  PIXEL3DMM_CHECK_T(ValueError, n > 0, path, ": no frames");
  std::vector<preprocess::OfficialCrop> crops;
  if (static_crop) {
    v.official_crop = preprocess::official_crop(v.face_boxes, height, width);
    crops.assign(static_cast<size_t>(n), v.official_crop);
  } else {
    const auto smoothed = smooth_face_boxes(v.face_boxes, o.smooth_radius);
    for (size_t i = 0; i < smoothed.size(); ++i) {
      const auto& b = smoothed[i];
      PIXEL3DMM_CHECK_T(NoFaceFound, b.score >= preprocess::kOfficialCropMinScore, path, ": frame ",
                        static_cast<int64_t>(i) * o.every, ": the best FaceBoxes score ", b.score, " is below ",
                        preprocess::kOfficialCropMinScore, " (the official crop's gate)");
      crops.push_back(preprocess::official_crop_from_boxes(b, b, sizes[i].first, sizes[i].second));
    }
  }

  // Frame i as the official stage 0 writes it (`frame` becomes that photo), cut by its crop.
  auto crop_frame = [&](torch::Tensor& frame, int64_t i) {
    const std::string name = frame_name(i);
    frame = preprocessor.official_photo(frame, name);
    return preprocessor.official_crop_of(frame, crops[static_cast<size_t>(i)], v.face_boxes[static_cast<size_t>(i)],
                                         name);
  };

  // Pass 2: the landmarks of every frame in its crop (crop pixels).
  std::vector<torch::Tensor> landmarks(static_cast<size_t>(n)), iris(static_cast<size_t>(n));
  {
    FrameSource source(path, o.every, o.max_frames);
    torch::Tensor frame;
    for (int64_t i = 0; i < n && source.next(frame); ++i) {
      preprocess::Preprocessed p = crop_frame(frame, i);
      const bool found = preprocessor.official_landmarks(p, frame);
      v.detected.push_back(found);
      if (found) {
        landmarks[static_cast<size_t>(i)] = p.landmarks;
        iris[static_cast<size_t>(i)] = p.iris;
        v.landmark_method = p.landmark_method;
      }
      if (progress) progress("landmarks", i + 1);
    }
  }
  PIXEL3DMM_CHECK_T(NoFaceFound, std::count(v.detected.begin(), v.detected.end(), true) > 0,
                    "no landmarks found in any frame of ", path, " (",
                    preprocessor.options().pipnet.empty() ? "dlib's detector" : "FaceBoxesV2's second pass on the crop",
                    ")");

  // Pass 3: crop, masks (landmarks borrowed from the nearest frame with some), predictions in batches.
  TargetBatcher batcher(predictor, o, v, progress);
  FrameSource source(path, o.every, o.max_frames);
  torch::Tensor frame;
  for (int64_t i = 0; i < n && source.next(frame); ++i) {
    preprocess::Preprocessed p = crop_frame(frame, i);
    const auto k = static_cast<size_t>(nearest_found(v.detected, i));
    p.landmarks = landmarks[k];
    p.iris = iris[k];
    p.landmark_method = v.landmark_method;
    frame_masks(p, preprocessor, v.mask_method, o, i);
    v.boxes.push_back(p.crop_box);
    v.detected_boxes.push_back(p.crop_box);
    batcher.add(std::move(p), !v.detected[static_cast<size_t>(i)]);
  }
  batcher.flush();
  PIXEL3DMM_CHECK_T(ValueError, static_cast<int64_t>(v.frames.size()) == n, path, ": the third read gave ",
                    v.frames.size(), " frames, the first ", n);
  return v;
}

}  // namespace

VideoTargets load_video_targets(const std::string& path, const preprocess::Preprocessor& preprocessor,
                                const predict::Predictor& predictor, const FrontEndOptions& o,
                                const FrontEndCallback& progress) {
  const preprocess::PreprocessOptions& po = preprocessor.options();
  const std::string method = preprocess::resolved_mask_method(po);
  if (method == "segmentation") {
    std::error_code ec;
    PIXEL3DMM_CHECK_T(FileNotFound, fs::is_directory(po.segmentation, ec), po.segmentation,
                      ": track reads label images from a folder (one per frame, 00000.png, ..., the official seg_og "
                      "layout); no such folder");
  }
  PIXEL3DMM_CHECK_T(ValueError, o.predict_batch >= 1, "track: predict_batch must be >= 1, got ", o.predict_batch);
  PIXEL3DMM_CHECK_T(ValueError, o.crop == "auto" || o.crop == "official" || o.crop == "smoothed",
                    "track: crop must be auto, official or smoothed, got '", o.crop, "'");
  const bool faceboxes = po.crop == "official";
  PIXEL3DMM_CHECK_T(ValueError, o.crop != "official" || faceboxes,
                    "track: the official static crop needs FaceBoxesV2 (PreprocessOptions crop \"official\", "
                    "--faceboxes)");
  if (!o.label_folder.empty()) fs::create_directories(o.label_folder);
  if (faceboxes) return load_official(path, preprocessor, predictor, o, o.crop != "smoothed", progress);

  VideoTargets v;
  v.crop_method = "landmarks-smoothed";
  v.landmark_method = "dlib";
  v.mask_method = method;
  preprocess::CropOptions copt;
  copt.size = po.crop_size;
  copt.scale = po.crop_scale;
  copt.shift_up = po.crop_shift_up;
  copt.keep_inside = po.keep_inside;

  // Pass 1: the largest face's landmarks per frame, in image pixels.
  std::vector<torch::Tensor> landmarks;
  int64_t height = 0, width = 0;
  {
    FrameSource source(path, o.every, o.max_frames);
    v.fps = source.fps() / static_cast<double>(o.every);
    torch::Tensor frame;
    while (source.next(frame)) {
      height = frame.size(2), width = frame.size(3);
      const auto faces = preprocessor.detector().detect(frame);
      landmarks.push_back(faces.empty() ? torch::Tensor() : faces.front().landmarks.to(torch::kFloat));
      v.detected.push_back(!faces.empty());
      if (progress) progress("detect", source.count());
    }
  }
  const int64_t n = static_cast<int64_t>(landmarks.size());
  PIXEL3DMM_CHECK_T(ValueError, n > 0, path, ": no frames");
  PIXEL3DMM_CHECK_T(NoFaceFound, std::count(v.detected.begin(), v.detected.end(), true) > 0,
                    "no face found in any frame of ", path);
  // Frames without a face borrow the nearest detected frame's landmarks (earlier one on a tie).
  for (int64_t i = 0; i < n; ++i)
    landmarks[static_cast<size_t>(i)] = landmarks[static_cast<size_t>(nearest_found(v.detected, i))];
  for (const auto& lm : landmarks) v.detected_boxes.push_back(preprocess::crop_box_from_landmarks(lm, height, width, copt));
  v.boxes = smooth_boxes(v.detected_boxes, o.smooth_radius);

  // Pass 2: crop with the stable boxes, pupils and masks in the crop, predictions in batches.
  preprocess::PupilOptions pupils;
  pupils.dark_fraction = po.pupil_dark_fraction;
  TargetBatcher batcher(predictor, o, v, progress);
  FrameSource source(path, o.every, o.max_frames);
  torch::Tensor frame;
  for (int64_t i = 0; i < n && source.next(frame); ++i) {
    const preprocess::CropBox& box = v.boxes[static_cast<size_t>(i)];
    preprocess::Preprocessed p;
    p.crop_box = box;
    p.affine = preprocess::crop_affine(box, po.crop_size);
    p.crop = preprocess::crop_image(frame, box, po.crop_size);
    p.image_height = frame.size(2);
    p.image_width = frame.size(3);
    const torch::Tensor lm = preprocess::apply_affine(landmarks[static_cast<size_t>(i)], p.affine);
    p.landmarks = lm.unsqueeze(0);
    p.iris = preprocess::locate_pupils(p.crop, lm, pupils).unsqueeze(0);
    p.crop_method = "landmarks";
    p.landmark_method = "dlib";
    frame_masks(p, preprocessor, method, o, i);
    batcher.add(std::move(p));
  }
  batcher.flush();
  PIXEL3DMM_CHECK_T(ValueError, static_cast<int64_t>(v.frames.size()) == n, path, ": the second read gave ",
                    v.frames.size(), " frames, the first ", n);
  return v;
}

}  // namespace pixel3dmm::track
