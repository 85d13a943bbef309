#pragma once
/// The mesh renderer of the fitter: what the official Pixel3DMM renderer (nvdiffrast) produces, on the CPU.
///
/// Per image: the UV map in the official (u, 1 - v) convention, interpolated vertex normals, a soft antialiased
/// foreground mask (the only image with silhouette gradients), camera-space depth and region masks; plus the
/// official depth-test visibility of vertices. Images are NCHW; all are differentiable w.r.t. the vertices (through
/// the barycentrics; the mask also through silhouette edges) and the camera, except the binary region masks.

#include <torch/torch.h>

#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/rasterize.h"
#include "pixel3dmm/render/vertex_normals.h"

namespace pixel3dmm::render {

/// The official occlusion test (spec 3.4). projected: B x N x 3 from Camera::project (u, v, camera z < 0);
/// depth: B x 1 x H x W camera-space z, 0 on background (RenderOutput::depth). The depth is read at the pixel
/// (trunc(v), trunc(u)) clamped to the image; a vertex is visible iff depth_there < z + tolerance (so background,
/// depth 0, hides it). Returns B x N bool; non-finite projections are invisible. Unlike the official code, every
/// batch element reads its own pixel positions (the official indexing uses element 0's for all; same for B = 1).
torch::Tensor vertex_visibility(const torch::Tensor& projected, const torch::Tensor& depth, double tolerance = 0.01);

/// What `MeshRenderer::render` should produce; skipping an image saves its interpolation.
struct RenderRequest {
  bool uv = true;
  bool normals = true;
  bool mask = true;
  bool depth = true;
  bool regions = true;
  /// B x V x 3 world vertices to take the normals from; undefined = the rendered vertices. The official fitter
  /// passes the mesh posed without the neck rotation (its normals are compared in FLAME space).
  torch::Tensor normal_vertices;
};

/// Images of one render call (undefined when not requested). H x W is the camera's image size. The images are
/// NCHW-shaped views of channels-last storage (what interpolation produces); .contiguous() gives NCHW memory.
struct RenderOutput {
  RasterOutput raster;           ///< triangle ids, barycentrics, NDC depth, and the clip positions
  torch::Tensor uv;              ///< B x 2 x H x W (u, 1 - v) of the OBJ texture coordinates; background (1, 0)
  torch::Tensor normals;         ///< B x 3 x H x W interpolated vertex normals (world axes), not renormalised; 0 bg
  torch::Tensor mask;            ///< B x C x H x W soft foreground in [0, 1] (C = mask texture channels, else 1)
  torch::Tensor depth;           ///< B x 1 x H x W camera-space z of the surface (negative in front), 0 on background
  torch::Tensor regions;         ///< B x R x H x W: 1 where the interpolated per-vertex region mask is > 0, else 0
  torch::Tensor vertex_normals;  ///< B x V x 3 the normals that were interpolated
};

/// Renders a fixed-topology mesh (FLAME's) under a Camera. Holds the topology, the UV layout, the optional UV-space
/// mask texture and per-vertex region masks; `render` is const and may be called from several threads.
class MeshRenderer {
 public:
  /// faces: F x 3 vertex indices into num_vertices; uvs: T x 2 OBJ texture coordinates (u right, v up);
  /// uv_faces: F x 3 indices into uvs (per-corner UVs, as in an OBJ file), or undefined when uvs are per vertex
  /// (T = num_vertices). Throws ValueError on bad shapes or indices.
  MeshRenderer(const torch::Tensor& faces, const torch::Tensor& uvs, const torch::Tensor& uv_faces,
               int64_t num_vertices);

  /// texture: C x Ht x Wt (or Ht x Wt) values in [0, 1], e.g. the official uv_mask_eyes.png thresholded > 0.
  /// Sampled bilinearly (texel centres at (i + 0.5)/size, wrapping at the borders, nvdiffrast's defaults) at the
  /// official texture coordinates: column from 1 - u, row from 1 - v. Undefined clears it (mask = coverage).
  void set_mask_texture(const torch::Tensor& texture);
  /// masks: V x R per-vertex region masks (e.g. FLAME face, eyeballs as 0/1); undefined clears them.
  void set_region_masks(const torch::Tensor& masks);

  /// vertices: B x V x 3 world coordinates (metres, float32 or float64), camera with batch 1 or B -> the images.
  /// The foreground mask is the mask texture sampled at the interpolated UVs (0 on background), antialiased; with no
  /// texture it is the antialiased coverage.
  RenderOutput render(const torch::Tensor& vertices, const Camera& camera, const RenderRequest& request = {}) const;

  /// The official visibility of every vertex (see vertex_visibility) against a rendered depth image.
  /// vertices: B x V x 3 world; depth: B x 1 x H x W from render() with the same camera -> B x V bool.
  torch::Tensor visibility(const torch::Tensor& vertices, const Camera& camera, const torch::Tensor& depth,
                           double tolerance = 0.01) const;

  int64_t num_vertices() const { return num_vertices_; }
  int64_t num_faces() const { return faces_.size(0); }
  const torch::Tensor& faces() const { return faces_; }
  /// F x 3 int32 opposite-vertex table of the faces (see edge_topology), computed once.
  const torch::Tensor& topology() const { return topology_; }
  /// "MeshRenderer(vertices=5023, faces=9976, uvs=5118, mask_texture=3x2048x2048, regions=3)".
  std::string repr() const;

 private:
  torch::Tensor faces_;         // F x 3 int64
  torch::Tensor uv_faces_;      // F x 3 int64
  torch::Tensor texcoords_;     // T x 2 float32 (u - 1, 1 - v), see the constructor
  torch::Tensor topology_;      // F x 3 int32
  torch::Tensor mask_texture_;  // 1 x C x (Ht + 2) x (Wt + 2) float32, padded by one wrapped texel per side
  torch::Tensor region_masks_;  // V x R float32
  int64_t num_vertices_ = 0;
};

}  // namespace pixel3dmm::render
