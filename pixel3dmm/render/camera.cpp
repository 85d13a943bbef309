#include "pixel3dmm/render/camera.h"

#include <sstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::render {
namespace {

namespace idx = torch::indexing;

// Flips the y and z axes: OpenGL camera <-> OpenCV camera.
torch::Tensor flip_yz(const torch::TensorOptions& options) {
  return torch::tensor({1.0, -1.0, -1.0}, options);
}

void check_points(const torch::Tensor& points, const char* what) {
  PIXEL3DMM_CHECK(points.defined(), "Camera::", what, ": points are undefined");
  check_shape(points, {-1, -1, 3}, std::string("Camera::") + what + ": points");
  PIXEL3DMM_CHECK(points.is_floating_point(), "Camera::", what, ": points must be floating point, found ",
                  points.scalar_type());
}

std::string values_string(const torch::Tensor& t) {
  std::ostringstream s;
  const auto flat = t.detach().to(torch::kDouble).flatten();
  s << "[";
  for (int64_t i = 0; i < flat.numel() && i < 6; ++i) s << (i ? ", " : "") << flat[i].item<double>();
  if (flat.numel() > 6) s << ", ...";
  s << "]";
  return s.str();
}

}  // namespace

Camera Camera::official(int64_t size, double focal_value) {
  PIXEL3DMM_CHECK(size > 0, "Camera::official: size must be positive, found ", size);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  Camera c;
  c.focal = torch::full({1, 1}, focal_value, f32);
  c.principal_point = torch::zeros({1, 2}, f32);
  c.rotation = torch::eye(3, f32).unsqueeze(0);
  c.translation = torch::tensor({0.0f, 0.0f, -1.0f}, f32).unsqueeze(0);
  c.width = size;
  c.height = size;
  return c;
}

void Camera::validate() const {
  PIXEL3DMM_CHECK(focal.defined() && principal_point.defined() && rotation.defined() && translation.defined(),
                  "Camera: focal, principal_point, rotation and translation must all be set");
  check_shape(focal, {-1, -1}, "Camera.focal");
  PIXEL3DMM_CHECK(focal.size(1) == 1 || focal.size(1) == 2, "Camera.focal: expected shape [B, 1] or [B, 2], found ",
                  shape_string(focal.sizes()));
  check_shape(principal_point, {-1, 2}, "Camera.principal_point");
  check_shape(rotation, {-1, 3, 3}, "Camera.rotation");
  check_shape(translation, {-1, 3}, "Camera.translation");
  const auto dtype = focal.scalar_type();
  PIXEL3DMM_CHECK(focal.is_floating_point(), "Camera.focal: expected a floating-point dtype, found ", dtype);
  for (const auto& [t, name] : {std::pair{principal_point, "principal_point"}, std::pair{rotation, "rotation"},
                                std::pair{translation, "translation"}})
    check_dtype(t, dtype, std::string("Camera.") + name);
  const int64_t b = batch_size();
  for (const auto& [t, name] : {std::pair{focal, "focal"}, std::pair{principal_point, "principal_point"},
                                std::pair{rotation, "rotation"}, std::pair{translation, "translation"}})
    PIXEL3DMM_CHECK(t.size(0) == 1 || t.size(0) == b, "Camera.", name, ": batch size ", t.size(0),
                    " does not broadcast to ", b);
  PIXEL3DMM_CHECK(width > 0 && height > 0, "Camera: image size must be positive, found ", width, "x", height);
  PIXEL3DMM_CHECK(znear > 0 && znear < zfar, "Camera: expected 0 < znear < zfar, found znear=", znear,
                  " zfar=", zfar);
}

Camera Camera::to(torch::ScalarType dtype) const {
  validate();
  Camera c = *this;
  c.focal = focal.to(dtype);
  c.principal_point = principal_point.to(dtype);
  c.rotation = rotation.to(dtype);
  c.translation = translation.to(dtype);
  return c;
}

int64_t Camera::batch_size() const {
  int64_t b = 1;
  for (const auto* t : {&focal, &principal_point, &rotation, &translation})
    if (t->defined() && t->dim() > 0 && t->size(0) != 1) b = t->size(0);
  return b;
}

torch::Tensor Camera::focal_pixels() const {
  validate();
  return (focal * static_cast<double>(width)).expand({focal.size(0), 2});
}

torch::Tensor Camera::principal_pixels() const {
  validate();
  const auto half = torch::tensor({width / 2.0 + 0.5, height / 2.0 + 0.5}, principal_point.options());
  return (principal_point + 1.0) * half;
}

torch::Tensor Camera::intrinsics() const {
  const auto f = focal_pixels();
  const auto c = principal_pixels();
  const int64_t b = std::max(f.size(0), c.size(0));
  const auto zero = torch::zeros({b}, f.options());
  const auto one = torch::ones({b}, f.options());
  const auto fx = f.select(1, 0).expand({b}), fy = f.select(1, 1).expand({b});
  const auto cx = c.select(1, 0).expand({b}), cy = c.select(1, 1).expand({b});
  return torch::stack({fx, zero, cx, zero, fy, cy, zero, zero, one}, 1).view({b, 3, 3});
}

torch::Tensor Camera::world_to_camera(const torch::Tensor& points) const {
  validate();
  check_points(points, "world_to_camera");
  return torch::matmul(points, rotation.transpose(1, 2)) + translation.unsqueeze(1);
}

torch::Tensor Camera::project(const torch::Tensor& points) const {
  const auto pc = world_to_camera(points);
  const auto f = focal_pixels().unsqueeze(1), c = principal_pixels().unsqueeze(1);
  const auto d = -pc.index({idx::Slice(), idx::Slice(), 2});
  const auto u = f.select(2, 0) * pc.select(2, 0) / d + c.select(2, 0) - 1.0;
  const auto v = c.select(2, 1) - f.select(2, 1) * pc.select(2, 1) / d;
  return torch::stack({u, v, pc.select(2, 2)}, 2);
}

torch::Tensor Camera::project_raster(const torch::Tensor& points) const {
  const auto pc = world_to_camera(points);
  const auto f = focal_pixels().unsqueeze(1), c = principal_pixels().unsqueeze(1);
  const auto d = -pc.select(2, 2);
  const auto col = f.select(2, 0) * pc.select(2, 0) / d + c.select(2, 0) - 0.5;
  const auto row = c.select(2, 1) - f.select(2, 1) * pc.select(2, 1) / d - 0.5;
  return torch::stack({col, row}, 2);
}

torch::Tensor Camera::projection_matrix() const {
  const auto f = focal_pixels();
  const auto c = principal_pixels();
  const int64_t b = std::max(f.size(0), c.size(0));
  const double w = static_cast<double>(width), h = static_cast<double>(height);
  const auto zero = torch::zeros({b}, f.options());
  const auto fx = f.select(1, 0).expand({b}), fy = f.select(1, 1).expand({b});
  const auto cx = c.select(1, 0).expand({b}), cy = c.select(1, 1).expand({b});
  const auto a = zero - (zfar + znear) / (zfar - znear);
  const auto bb = zero - 2.0 * zfar * znear / (zfar - znear);
  return torch::stack({2.0 * fx / w, zero, (w - 2.0 * cx) / w, zero,   //
                       zero, -2.0 * fy / h, (h - 2.0 * cy) / h, zero,  //
                       zero, zero, a, bb,                              //
                       zero, zero, zero - 1.0, zero},
                      1)
      .view({b, 4, 4});
}

torch::Tensor Camera::view_matrix() const {
  validate();
  const int64_t b = std::max(rotation.size(0), translation.size(0));
  const auto top = torch::cat({rotation.expand({b, 3, 3}), translation.expand({b, 3}).unsqueeze(2)}, 2);
  auto bottom = torch::zeros({b, 1, 4}, rotation.options());
  bottom.index_put_({idx::Slice(), 0, 3}, 1.0);
  return torch::cat({top, bottom}, 1);
}

torch::Tensor Camera::mvp() const { return torch::matmul(projection_matrix(), view_matrix()); }

torch::Tensor Camera::to_clip(const torch::Tensor& points) const {
  const auto pc = world_to_camera(points);
  const auto p = projection_matrix();
  const auto homogeneous = torch::cat({pc, torch::ones_like(pc.narrow(2, 0, 1))}, 2);
  return torch::matmul(homogeneous, p.transpose(1, 2));
}

OpenCVCamera Camera::to_opencv() const {
  // OpenCV puts pixel centres at integers; the official intrinsics put them at integer + 0.5 (see the header).
  const auto shift = torch::tensor({0.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0}, focal.options()).view({1, 3, 3});
  const auto k = intrinsics() - shift;
  const auto flip = flip_yz(rotation.options());
  return {k, rotation * flip.view({1, 3, 1}), translation * flip.view({1, 3})};
}

Camera Camera::from_opencv(const OpenCVCamera& cv, int64_t width, int64_t height, double znear, double zfar) {
  PIXEL3DMM_CHECK(cv.K.defined() && cv.R.defined() && cv.t.defined(), "Camera::from_opencv: K, R and t must be set");
  check_shape(cv.K, {-1, 3, 3}, "Camera::from_opencv: K");
  check_shape(cv.R, {-1, 3, 3}, "Camera::from_opencv: R");
  check_shape(cv.t, {-1, 3}, "Camera::from_opencv: t");
  PIXEL3DMM_CHECK(width > 0 && height > 0, "Camera::from_opencv: image size must be positive, found ", width, "x",
                  height);
  const auto kd = cv.K.detach().to(torch::kDouble);
  const double tol = 1e-6 * std::max(1.0, kd.abs().max().item<double>());
  const double skew = std::max(kd.select(1, 0).select(1, 1).abs().max().item<double>(),
                               kd.select(1, 1).select(1, 0).abs().max().item<double>());
  PIXEL3DMM_CHECK(skew <= tol, "Camera::from_opencv: K must have zero skew (K[0,1] = K[1,0] = 0), found ", skew);
  const auto last = kd.select(1, 2) - torch::tensor({0.0, 0.0, 1.0}, kd.options());
  PIXEL3DMM_CHECK(last.abs().max().item<double>() <= tol, "Camera::from_opencv: K's last row must be (0, 0, 1)");
  Camera c;
  const double w = static_cast<double>(width), h = static_cast<double>(height);
  const auto fx = cv.K.select(1, 0).select(1, 0), fy = cv.K.select(1, 1).select(1, 1);
  c.focal = torch::stack({fx, fy}, 1) / w;
  const auto cx = cv.K.select(1, 0).select(1, 2) + 0.5, cy = cv.K.select(1, 1).select(1, 2) + 0.5;
  c.principal_point = torch::stack({cx / (w / 2.0 + 0.5), cy / (h / 2.0 + 0.5)}, 1) - 1.0;
  const auto flip = flip_yz(cv.R.options());
  c.rotation = cv.R * flip.view({1, 3, 1});
  c.translation = cv.t * flip.view({1, 3});
  c.width = width;
  c.height = height;
  c.znear = znear;
  c.zfar = zfar;
  c.validate();
  return c;
}

std::string Camera::repr() const {
  std::ostringstream s;
  s << "Camera(batch=" << batch_size() << ", " << width << "x" << height;
  if (focal.defined()) s << ", focal=" << values_string(focal);
  if (principal_point.defined()) s << ", pp=" << values_string(principal_point);
  s << ", znear=" << znear << ", zfar=" << zfar << ")";
  return s.str();
}

}  // namespace pixel3dmm::render
