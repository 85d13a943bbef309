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
std::vector<preprocess::CropBox> smooth_boxes(const std::vector<preprocess::CropBox>& boxes, int radius) {
  const int64_t n = static_cast<int64_t>(boxes.size());
  if (radius <= 0 || n < 2) return boxes;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
  };
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
  VideoTargets v;
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
  for (int64_t i = 0; i < n; ++i) {
    if (landmarks[static_cast<size_t>(i)].defined()) continue;
    for (int64_t d = 1; d < n; ++d) {
      if (i - d >= 0 && v.detected[static_cast<size_t>(i - d)]) {
        landmarks[static_cast<size_t>(i)] = landmarks[static_cast<size_t>(i - d)];
        break;
      }
      if (i + d < n && v.detected[static_cast<size_t>(i + d)]) {
        landmarks[static_cast<size_t>(i)] = landmarks[static_cast<size_t>(i + d)];
        break;
      }
    }
  }
  for (const auto& lm : landmarks) v.detected_boxes.push_back(preprocess::crop_box_from_landmarks(lm, height, width, copt));
  v.boxes = smooth_boxes(v.detected_boxes, o.smooth_radius);

  // Pass 2: crop with the stable boxes, pupils and masks in the crop, predictions in batches.
  preprocess::PupilOptions pupils;
  pupils.dark_fraction = po.pupil_dark_fraction;
  preprocess::LandmarkMaskOptions mopt;
  mopt.forehead = po.forehead;
  mopt.grabcut = method == "landmarks+grabcut";
  mopt.grabcut_iterations = po.grabcut_iterations;
  mopt.seed = po.seed;
  std::vector<preprocess::Preprocessed> pending;
  auto flush = [&]() {
    if (pending.empty()) return;
    std::vector<torch::Tensor> crops;
    for (const auto& p : pending) crops.push_back(p.crop);
    const predict::Predictions batch = predictor.predict(torch::cat(crops));
    for (size_t j = 0; j < pending.size(); ++j) {
      predict::Predictions one;
      const auto row = static_cast<int64_t>(j);
      one.uv = batch.uv.slice(0, row, row + 1);
      one.normals = batch.normals.slice(0, row, row + 1);
      fit::FitTarget t = reconstruct::make_target(pending[j], one);
      if (o.map_size > 0 && t.uv.size(-1) != o.map_size) {
        // The fitter's own resize (bicubic, antialiased; Pillow-position nearest for masks), done once here to keep memory low.
        const std::vector<int64_t> s{o.map_size, o.map_size};
        auto map = [&](const torch::Tensor& x) {
          return F::interpolate(x, F::InterpolateFuncOptions().size(s).mode(torch::kBicubic).align_corners(false)
                                       .antialias(true));
        };
        auto mask = [&](const torch::Tensor& x) {
          return torch::_upsample_nearest_exact2d(x.unsqueeze(1), s).squeeze(1);  // Pillow's NEAREST positions
        };
        const double scale = double(o.map_size) / double(t.uv.size(-1));
        t.uv = map(t.uv);
        t.normals = map(t.normals);
        t.image = map(t.image).clamp(0, 1);
        for (auto* m : {&t.uv_mask, &t.normal_mask, &t.fg_mask, &t.valid_bg}) *m = mask(*m);
        t.landmarks = (t.landmarks + 0.5) * scale - 0.5;
        if (t.iris.defined()) t.iris = (t.iris + 0.5) * scale - 0.5;
      }
      v.frames.push_back(std::move(t));
    }
    pending.clear();
    if (progress) progress("predict", static_cast<int64_t>(v.frames.size()));
  };
  FrameSource source(path, o.every, o.max_frames);
  torch::Tensor frame;
  for (int64_t i = 0; i < n && source.next(frame); ++i) {
    const preprocess::CropBox& box = v.boxes[static_cast<size_t>(i)];
    preprocess::Preprocessed p;
    p.crop_box = box;
    p.affine = preprocess::crop_affine(box, po.crop_size);
    p.crop = preprocess::crop_image(frame, box, po.crop_size);
    const torch::Tensor lm = preprocess::apply_affine(landmarks[static_cast<size_t>(i)], p.affine);
    p.landmarks = lm.unsqueeze(0);
    p.iris = preprocess::locate_pupils(p.crop, lm, pupils).unsqueeze(0);
    preprocess::FaceMasks m;
    if (method == "segmentation") {
      // Named by the frame's index in the source (the official seg_og/{t:05d}.png), so --every keeps matching.
      char name[32];
      std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(i * o.every));
      const std::string file = (fs::path(po.segmentation) / name).string();
      m = preprocess::masks_from_segmentation(
          preprocess::labels_in_crop(preprocess::read_segmentation(file), p.affine, frame.size(2), frame.size(3),
                                     po.crop_size, file),
          po.big_normal_mask);
    } else {
      m = preprocess::masks_from_landmarks(p.crop, lm, mopt);
    }
    p.uv_mask = m.uv_mask;
    p.normal_mask = m.normal_mask;
    p.fg_mask = m.fg_mask;
    p.valid_bg = m.valid_bg;
    p.mask_method = method;
    pending.push_back(std::move(p));
    if (static_cast<int>(pending.size()) >= o.predict_batch) flush();
  }
  flush();
  PIXEL3DMM_CHECK_T(ValueError, static_cast<int64_t>(v.frames.size()) == n, path, ": the second read gave ",
                    v.frames.size(), " frames, the first ", n);
  return v;
}

}  // namespace pixel3dmm::track
