#pragma once
/// The pinhole camera of pixel3dmm, and the one place where its conventions are converted.
///
/// Convention used inside the library (the official Pixel3DMM one, so that fits are comparable):
///  - World-to-camera extrinsics p_c = R p_w + t with an OpenGL camera: x right, y up, the camera looks down -z,
///    so points in front have p_c.z < 0 and depth d = -p_c.z. The official fitter keeps the camera fixed at
///    R = I, t = (0, 0, -1) (a camera at world (0, 0, 1)) and moves the head instead.
///  - Intrinsics are normalised: fx = focal_x * width, fy = focal_y * width (a B x 1 focal means fx = fy),
///    cx = (width / 2 + 0.5) (1 + pp_x), cy = (height / 2 + 0.5) (1 + pp_y). For square images of size S this is
///    exactly the official parameterisation (f = 3.90625 = 1000 px at S = 256, pp = 0).
///  - Images are stored upright: row 0 is the top, column 0 the left; pixel (col, row) covers [col, col+1) x
///    [row, row+1) and its centre sits at integer + 0.5 in "continuous" coordinates.
///
/// Two pixel positions exist, both reproduced for parity with the official code (spec official-fitting 2.4, 2.5):
///  - raster position (where the rasteriser draws the point; integer = pixel centre):
///        col = fx x / d + cx - 0.5,   row = cy - fy y / d - 0.5
///  - analytic projection (landmarks, UV-correspondence loss, visibility lookup):
///        u = fx x / d + cx - 1,       v = cy - fy y / d
///    i.e. analytic = raster + (-0.5, +0.5) px: a systematic half-pixel offset between the two official code paths.
///  - OpenCV (x right, y down, z forward; integer = pixel centre) is converted so that OpenCV's projection equals
///    the raster position: K = [[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1]], R_cv = diag(1,-1,-1) R,
///    t_cv = diag(1,-1,-1) t.
///
/// Every method is made of differentiable tensor operations: gradients reach focal, principal_point, rotation and
/// translation.

#include <torch/torch.h>

#include <string>

namespace pixel3dmm::render {

/// An OpenCV camera: x_pixel = K (R p + t) / z with z forward and y down.
struct OpenCVCamera {
  torch::Tensor K;  ///< B x 3 x 3, pixels
  torch::Tensor R;  ///< B x 3 x 3, world -> camera rotation
  torch::Tensor t;  ///< B x 3, world -> camera translation (same units as the points)
};

/// Pinhole camera in the library convention (see the file comment). A batch size of 1 in any tensor broadcasts.
struct Camera {
  torch::Tensor focal;            ///< B x 1 or B x 2, focal length / image width
  torch::Tensor principal_point;  ///< B x 2, normalised: cx = (width/2 + 0.5)(1 + pp_x), cy likewise with height
  torch::Tensor rotation;         ///< B x 3 x 3, world -> OpenGL camera
  torch::Tensor translation;      ///< B x 3, world -> OpenGL camera
  int64_t width = 256;            ///< image width in pixels
  int64_t height = 256;           ///< image height in pixels
  double znear = 0.1;             ///< near clipping distance (official: 0.1)
  double zfar = 5.0;              ///< far clipping distance (official: 5)

  /// The official fitter's initial camera at resolution size x size: focal 2000/512 = 3.90625 (1000 px at 256),
  /// principal point (0, 0), R = I, t = (0, 0, -1), znear 0.1, zfar 5; float32 tensors of batch size 1.
  static Camera official(int64_t size = 256, double focal = 3.90625);

  /// Throws ValueError naming the field when a tensor has the wrong shape, the sizes are not positive or
  /// 0 < znear < zfar fails. Every method below calls it.
  void validate() const;

  /// A copy with every tensor converted to `dtype` (differentiably); the same camera when it already is.
  Camera to(torch::ScalarType dtype) const;

  /// The batch size the tensors broadcast to.
  int64_t batch_size() const;

  /// B x 2 (fx, fy) in pixels.
  torch::Tensor focal_pixels() const;
  /// B x 2 (cx, cy) in pixels, official definition (no "hack" flip): cx = (W/2 + 0.5)(1 + pp_x).
  torch::Tensor principal_pixels() const;
  /// B x 3 x 3 intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in the official (not OpenCV) pixel convention.
  torch::Tensor intrinsics() const;

  /// points: B x N x 3 world -> B x N x 3 OpenGL camera coordinates (p_c = R p + t; z < 0 in front).
  torch::Tensor world_to_camera(const torch::Tensor& points) const;
  /// points: B x N x 3 world -> B x N x 3 (u, v, p_c.z): the official analytic projection u = fx x/d + cx - 1,
  /// v = cy - fy y/d with d = -p_c.z; the third column is the (negative) camera-space z the visibility test uses.
  torch::Tensor project(const torch::Tensor& points) const;
  /// points: B x N x 3 world -> B x N x 2 (col, row) where the rasteriser draws them (integer = pixel centre).
  torch::Tensor project_raster(const torch::Tensor& points) const;

  /// B x 4 x 4 OpenGL projection (spec 2.5): [[2fx/W, 0, (W-2cx)/W, 0], [0, -2fy/H, (H-2cy)/H, 0],
  /// [0, 0, -(f+n)/(f-n), -2fn/(f-n)], [0, 0, -1, 0]]; the -2fy/H entry makes the raster image upright.
  torch::Tensor projection_matrix() const;
  /// B x 4 x 4 world -> camera [R | t] as a homogeneous matrix.
  torch::Tensor view_matrix() const;
  /// B x 4 x 4 projection_matrix() @ view_matrix().
  torch::Tensor mvp() const;
  /// points: B x N x 3 world -> B x N x 4 clip coordinates, the rasteriser's input.
  torch::Tensor to_clip(const torch::Tensor& points) const;

  /// The same camera in OpenCV's convention (see the file comment); focal becomes (fx, fy) pixels.
  OpenCVCamera to_opencv() const;
  /// From OpenCV K, R, t (K must have zero skew and K[2] = (0, 0, 1)); focal is returned as B x 2.
  static Camera from_opencv(const OpenCVCamera& cv, int64_t width, int64_t height, double znear = 0.1,
                            double zfar = 5.0);

  /// "Camera(batch=1, 256x256, focal=[3.90625], pp=[0, 0], znear=0.1, zfar=5)".
  std::string repr() const;
};

}  // namespace pixel3dmm::render
