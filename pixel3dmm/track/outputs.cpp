#include "pixel3dmm/track/outputs.h"

#include <cstdio>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/fit/outputs.h"
#include "pixel3dmm/flame/rotation.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/plot.h"
#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::track {
namespace fs = std::filesystem;

namespace {

std::string numbered(int64_t i, const char* ext) {
  char name[32];
  std::snprintf(name, sizeof name, "%05lld%s", static_cast<long long>(i), ext);
  return name;
}

}  // namespace

fit::FitResult as_fit_result(const Tracker& tracker, const TrackResult& r) {
  PIXEL3DMM_CHECK(r.complete && r.vertices.defined(), "track outputs: the run did not finish");
  fit::FitResult f;
  f.params = r.params;
  f.camera = tracker.fitter().camera(r.params);
  f.vertices = r.vertices;
  f.vertices_flame = r.vertices_flame;
  f.canonical = r.canonical;
  f.identity_prior = r.identity_prior;
  f.seconds = r.online_seconds + r.global_seconds;
  int steps = static_cast<int>(r.global_loss.size());
  for (int s : r.online_steps) steps += s;
  f.iterations = steps;
  return f;
}

std::string write_track_outputs(const std::string& folder, const Tracker& tracker, const TrackResult& r,
                                const std::vector<fit::FitTarget>& frames, const TrackOutputOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t n = r.params.batch_size();
  PIXEL3DMM_CHECK(static_cast<int64_t>(frames.size()) == n, "track outputs: ", frames.size(), " frames for ", n,
                  " tracked frames");
  fs::create_directories(folder);
  const fit::FitResult f = as_fit_result(tracker, r);
  const fs::path dir(folder);

  // The whole sequence in one file.
  const auto& p = r.params;
  io::TensorMap t{{"flame.exp", p.expression},   {"flame.shape", p.shape}, {"flame.eyes", p.eyes},
                  {"flame.eyelids", p.eyelids},  {"flame.jaw", p.jaw},     {"flame.neck", p.neck},
                  {"flame.R", p.rotation},       {"flame.R_rotation_matrix", flame::rotation_6d_to_matrix(p.rotation)},
                  {"flame.t", p.translation},    {"camera.R_base_0", f.camera.rotation},
                  {"camera.t_base_0", f.camera.translation},
                  {"camera.fl", p.focal},        {"camera.pp", p.principal_point}};
  for (auto& [k, v] : t) v = v.detach().to(torch::kFloat).contiguous();
  const int64_t s = tracker.fitter().config().image_size;
  io::write_safetensors((dir / "sequence.safetensors").string(), t,
                        {{"img_size", std::to_string(s)}, {"frames", std::to_string(n)},
                         {"format", "pixel3dmm tracked sequence"}});
  io::json j;
  for (const auto& [k, v] : t) {
    // {shape, values} as fit's params.json (io::tensor_to_json takes 1-D / 2-D tensors only; R is N x 3 x 3).
    const auto flat = v.to(torch::kDouble).contiguous().view({-1});
    j[k] = {{"shape", v.sizes().vec()},
            {"values", std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel())}};
  }
  j["img_size"] = {s, s};
  j["frames"] = n;
  if (r.identity_prior.defined()) {
    const auto c = r.identity_prior.to(torch::kDouble).contiguous();
    j["identity_prior"] = {{"shape", c.sizes().vec()},
                           {"values", std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel())}};
  } else {
    j["identity_prior"] = nullptr;  // none: the official ignore_mica
  }
  j["online_steps"] = r.online_steps;
  j["online_loss"] = r.online_loss;
  j["global_steps"] = r.global_loss.size();
  j["global_final_loss"] = r.global_loss.empty() ? 0.0 : r.global_loss.back();
  io::write_json((dir / "sequence.json").string(), j);

  if (o.frames) {
    fit::FitOutputOptions fo;
    fo.pictures = false;
    fo.log = false;
    for (int64_t i = 0; i < n; ++i)
      fit::write_fit_outputs((dir / "frames" / numbered(i, "")).string(), tracker.fitter(), f,
                             frames[static_cast<size_t>(i)], i, fo);
  }

  if (o.plot) {
    io::PlotSeries global{"global stage (per step)", {}, {}, {220, 60, 0}};
    for (size_t k = 0; k < r.global_loss.size(); ++k)
      global.x.push_back(double(k)), global.y.push_back(std::max(r.global_loss[k], 1e-12));
    io::PlotSeries online{"online stage (final loss per frame)", {}, {}, {0, 120, 200}};
    for (size_t k = 0; k < r.online_loss.size(); ++k)
      online.x.push_back(double(k)), online.y.push_back(std::max(r.online_loss[k], 1e-12));
    io::PlotOptions po;
    po.title = "tracking loss";
    po.x_label = "global step / frame";
    io::write_image((dir / "loss.png").string(), io::line_plot({global, online}, po));
  }

  if (!o.video) return "";
  // Overlay pictures, as the official result.mp4.
  auto picture = [&](int64_t i) { return fit::fit_overlay_image(tracker.fitter(), f, frames[static_cast<size_t>(i)], i); };
  auto to_bgr = [](const torch::Tensor& img) {
    const auto hwc = (img[0].clamp(0, 1) * 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
    cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr());
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    return bgr;
  };
  const std::string video = (dir / "overlay.mp4").string();
  bool written = false;
  try {
    write_atomically(video, [&](const std::string& tmp) {
      const auto first = picture(0);
      cv::VideoWriter writer(tmp, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), o.fps,
                             cv::Size(static_cast<int>(first.size(3)), static_cast<int>(first.size(2))));
      if (!writer.isOpened()) throw Error("no MP4 writer");
      writer.write(to_bgr(first));
      for (int64_t i = 1; i < n; ++i) writer.write(to_bgr(picture(i)));
      writer.release();
      written = true;
    });
  } catch (const Error&) {
    written = false;
  }
  if (written && fs::exists(video) && fs::file_size(video) > 0) return video;
  const std::string pngs = (dir / "overlay").string();
  write_folder_atomically(pngs, [&](const std::string& tmp) {
    for (int64_t i = 0; i < n; ++i) io::write_image((fs::path(tmp) / numbered(i, ".png")).string(), picture(i));
  });
  return pngs;
}

}  // namespace pixel3dmm::track
