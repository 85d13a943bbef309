// Bindings of pixel3dmm/render: Camera, rasterize / interpolate / antialias, MeshRenderer, uv_sphere.
#include <pybind11/stl.h>

#include <optional>

#include "bindings.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/render/antialias.h"
#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/mesh_renderer.h"
#include "pixel3dmm/render/primitives.h"
#include "pixel3dmm/render/rasterize.h"

namespace pixel3dmm::python {

namespace {

using render::Camera;
using render::MeshRenderer;
using render::RasterOutput;
using render::RenderOutput;

std::string shape_or_none(const torch::Tensor& t) { return t.defined() ? shape_string(t.sizes()) : "None"; }

}  // namespace

void bind_render(py::module_& m) {
  // --- Camera ---
  py::class_<Camera> camera(
      m, "Camera",
      "Pinhole camera in the library convention (the official Pixel3DMM one): OpenGL camera axes (x right, y up,\n"
      "looking down -z), world -> camera p_c = R p + t, fx = focal_x * width, fy = focal_y * width,\n"
      "cx = (width/2 + 0.5)(1 + pp_x), cy = (height/2 + 0.5)(1 + pp_y); upright images (row 0 = top).\n"
      "Raster position: col = fx x/d + cx - 0.5, row = cy - fy y/d - 0.5 (d = -z_c); the official analytic\n"
      "projection (project) is that + (-0.5, +0.5). All methods are differentiable torch operations.");
  camera.def(py::init([](const py::object& focal, const py::object& principal_point, const py::object& rotation,
                         const py::object& translation, int64_t width, int64_t height, double znear, double zfar) {
               const Camera c{to_tensor(focal),
                              to_tensor(principal_point),
                              to_tensor(rotation),
                              to_tensor(translation),
                              width,
                              height,
                              znear,
                              zfar};
               c.validate();
               return c;
             }),
             py::arg("focal"), py::arg("principal_point"), py::arg("rotation"), py::arg("translation"),
             py::arg("width"), py::arg("height"), py::arg("znear") = 0.1, py::arg("zfar") = 5.0,
             "focal: B x 1 or B x 2 (/ width); principal_point: B x 2 normalised; rotation: B x 3 x 3; "
             "translation: B x 3 (world -> OpenGL camera).");
  camera.def_readwrite("focal", &Camera::focal, "B x 1 or B x 2 focal length / image width")
      .def_readwrite("principal_point", &Camera::principal_point, "B x 2 normalised principal point")
      .def_readwrite("rotation", &Camera::rotation, "B x 3 x 3 world -> camera rotation (OpenGL axes)")
      .def_readwrite("translation", &Camera::translation, "B x 3 world -> camera translation")
      .def_readwrite("width", &Camera::width, "image width in pixels")
      .def_readwrite("height", &Camera::height, "image height in pixels")
      .def_readwrite("znear", &Camera::znear, "near clipping distance")
      .def_readwrite("zfar", &Camera::zfar, "far clipping distance");
  camera.def_static("official", &Camera::official, py::arg("size") = 256, py::arg("focal") = 3.90625,
                    "The official fitter's initial camera at size x size: focal 3.90625 (1000 px at 256), pp 0, "
                    "R = I, t = (0, 0, -1), znear 0.1, zfar 5; float32, batch 1.");
  camera.def_static(
      "from_opencv",
      [](const py::object& K, const py::object& R, const py::object& t, int64_t width, int64_t height, double znear,
         double zfar) {
        return Camera::from_opencv({to_tensor(K), to_tensor(R), to_tensor(t)}, width, height, znear, zfar);
      },
      py::arg("K"), py::arg("R"), py::arg("t"), py::arg("width"), py::arg("height"), py::arg("znear") = 0.1,
      py::arg("zfar") = 5.0,
      "From OpenCV K (B x 3 x 3, zero skew), R (B x 3 x 3), t (B x 3): x_pixel = K (R p + t) / z, y down, z "
      "forward, integer = pixel centre. focal becomes B x 2.");
  camera.def(
      "to_opencv",
      [](const Camera& c) {
        const render::OpenCVCamera cv = c.to_opencv();
        return py::make_tuple(cv.K, cv.R, cv.t);
      },
      "(K, R, t) in OpenCV's convention, whose projection equals project_raster: K = [[fx, 0, cx - 0.5], "
      "[0, fy, cy - 0.5], [0, 0, 1]], R = diag(1, -1, -1) R, t = diag(1, -1, -1) t.");
  camera.def("validate", &Camera::validate, "Raises ValueError naming a field with a wrong shape or value.")
      .def("batch_size", &Camera::batch_size, "The batch size the tensors broadcast to.")
      .def(
          "to",
          [](const Camera& c, const py::object& dtype) {
            const auto probe = py::module_::import("torch").attr("empty")(0, py::arg("dtype") = dtype);
            return c.to(probe.cast<torch::Tensor>().scalar_type());
          },
          py::arg("dtype"), "A copy with every tensor converted to dtype (a torch.dtype).")
      .def("focal_pixels", &Camera::focal_pixels, "B x 2 (fx, fy) in pixels.")
      .def("principal_pixels", &Camera::principal_pixels, "B x 2 (cx, cy) in pixels (official, no hack flip).")
      .def("intrinsics", &Camera::intrinsics, "B x 3 x 3 [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (official pixels).")
      .def("world_to_camera", &Camera::world_to_camera, py::arg("points"),
           "points: B x N x 3 world -> B x N x 3 OpenGL camera coordinates (z < 0 in front).")
      .def("project", &Camera::project, py::arg("points"),
           "points: B x N x 3 -> B x N x 3 (u, v, z_camera): the official analytic projection "
           "u = fx x/d + cx - 1, v = cy - fy y/d.")
      .def("project_raster", &Camera::project_raster, py::arg("points"),
           "points: B x N x 3 -> B x N x 2 (col, row) where the rasteriser draws them (integer = pixel centre).")
      .def("projection_matrix", &Camera::projection_matrix, "B x 4 x 4 OpenGL projection (official clip matrix).")
      .def("view_matrix", &Camera::view_matrix, "B x 4 x 4 [R | t].")
      .def("mvp", &Camera::mvp, "B x 4 x 4 projection_matrix() @ view_matrix().")
      .def("to_clip", &Camera::to_clip, py::arg("points"),
           "points: B x N x 3 world -> B x N x 4 clip coordinates (the rasteriser's input).")
      .def("__repr__", &Camera::repr);

  // --- rasterize / interpolate / antialias ---
  py::class_<RasterOutput>(m, "RasterOutput",
                           "What rasterize returns; interpolate and antialias differentiate through pos_clip.")
      .def_readonly("triangle_id", &RasterOutput::triangle_id, "B x H x W int32, -1 on background")
      .def_readonly("bary", &RasterOutput::bary, "B x H x W x 2 perspective-correct (b0, b1); b2 = 1 - b0 - b1")
      .def_readonly("depth", &RasterOutput::depth, "B x H x W NDC depth z/w, 0 on background")
      .def_readonly("pos_clip", &RasterOutput::pos_clip, "B x V x 4 the rasterised clip positions")
      .def_readonly("faces", &RasterOutput::faces, "F x 3 int64 the rasterised faces")
      .def_readonly("height", &RasterOutput::height)
      .def_readonly("width", &RasterOutput::width)
      .def("nvdiffrast_layout", &RasterOutput::nvdiffrast_layout,
           "B x H x W x 4 (b0, b1, z/w, triangle_id + 1), nvdiffrast's rast tensor.")
      .def("coverage", &RasterOutput::coverage, "B x H x W bool: a triangle covers the pixel.")
      .def("__repr__", [](const RasterOutput& r) {
        return "RasterOutput(batch=" + std::to_string(r.triangle_id.defined() ? r.triangle_id.size(0) : 0) + ", " +
               std::to_string(r.height) + "x" + std::to_string(r.width) +
               ", faces=" + std::to_string(r.faces.defined() ? r.faces.size(0) : 0) + ")";
      });
  m.def("rasterize", &render::rasterize, py::arg("pos_clip"), py::arg("faces"), py::arg("height"), py::arg("width"),
        py::call_guard<py::gil_scoped_release>(),
        "pos_clip: B x V x 4 float32/float64 clip coordinates, faces: F x 3 int -> RasterOutput (visible triangle, "
        "perspective-correct barycentrics, NDC depth per pixel). Z-buffered (ties: lower id), clipped at the near "
        "and far planes, both facings drawn, nvdiffrast's pixel centres. Not differentiable itself.");
  m.def(
      "interpolate",
      [](const torch::Tensor& attr, const RasterOutput& raster, const py::object& faces) {
        const torch::Tensor f = to_tensor(faces);
        py::gil_scoped_release release;
        return render::interpolate(attr, raster, f);
      },
      py::arg("attr"), py::arg("raster"), py::arg("faces") = py::none(),
      "attr: B x V x C, 1 x V x C or V x C -> B x H x W x C perspective-correct interpolation (0 on background). "
      "faces: F x 3 indices into attr (default: the rasterised faces). Differentiable w.r.t. attr and "
      "raster.pos_clip (through the barycentrics).");
  m.def("edge_topology", &render::edge_topology, py::arg("faces"), py::arg("num_vertices"),
        "faces: F x 3 -> F x 3 int32: the vertex across edge i (opposite vertex i) in the neighbouring face, -1 on "
        "boundaries. Pass it to antialias to save recomputing it.");
  m.def(
      "antialias",
      [](const torch::Tensor& color, const RasterOutput& raster, const py::object& topology) {
        const torch::Tensor t = to_tensor(topology);
        py::gil_scoped_release release;
        return render::antialias(color, raster, t);
      },
      py::arg("color"), py::arg("raster"), py::arg("topology") = py::none(),
      "color: B x H x W x C -> B x H x W x C with analytic antialiasing across silhouette edges (nvdiffrast's "
      "algorithm); differentiable w.r.t. color and raster.pos_clip (silhouette gradients).");

  // --- MeshRenderer ---
  m.def("vertex_normals", &render::vertex_normals, py::arg("vertices"), py::arg("faces"),
        "vertices: B x V x 3, faces: F x 3 -> B x V x 3 area-weighted vertex normals (pytorch3d's), eps 1e-6.");
  m.def("vertex_visibility", &render::vertex_visibility, py::arg("projected"), py::arg("depth"),
        py::arg("tolerance") = 0.01,
        "projected: B x N x 3 from Camera.project, depth: B x 1 x H x W camera z (0 background) -> B x N bool: "
        "depth at (trunc v, trunc u) < z + tolerance (the official occlusion test).");
  py::class_<RenderOutput>(m, "RenderOutput", "Images of MeshRenderer.render (NCHW; None when not requested).")
      .def_readonly("raster", &RenderOutput::raster)
      .def_property_readonly(
          "uv", [](const RenderOutput& o) { return from_tensor(o.uv); }, "B x 2 x H x W (u, 1 - v); background (1, 0)")
      .def_property_readonly(
          "normals", [](const RenderOutput& o) { return from_tensor(o.normals); },
          "B x 3 x H x W interpolated vertex normals, not renormalised; 0 on background")
      .def_property_readonly(
          "mask", [](const RenderOutput& o) { return from_tensor(o.mask); },
          "B x C x H x W soft antialiased foreground")
      .def_property_readonly(
          "depth", [](const RenderOutput& o) { return from_tensor(o.depth); },
          "B x 1 x H x W camera-space z (negative in front), 0 on background")
      .def_property_readonly(
          "regions", [](const RenderOutput& o) { return from_tensor(o.regions); }, "B x R x H x W {0, 1} region masks")
      .def_property_readonly(
          "vertex_normals", [](const RenderOutput& o) { return from_tensor(o.vertex_normals); },
          "B x V x 3 the interpolated vertex normals")
      .def("__repr__", [](const RenderOutput& o) {
        return "RenderOutput(uv=" + shape_or_none(o.uv) + ", normals=" + shape_or_none(o.normals) +
               ", mask=" + shape_or_none(o.mask) + ", depth=" + shape_or_none(o.depth) +
               ", regions=" + shape_or_none(o.regions) + ")";
      });
  py::class_<MeshRenderer>(m, "MeshRenderer",
                           "Renders a fixed-topology mesh (FLAME's) under a Camera: UV map (u, 1 - v), normals, "
                           "antialiased foreground mask, depth, region masks; official vertex visibility.")
      .def(py::init([](const torch::Tensor& faces, const torch::Tensor& uvs, const py::object& uv_faces,
                       int64_t num_vertices) { return MeshRenderer(faces, uvs, to_tensor(uv_faces), num_vertices); }),
           py::arg("faces"), py::arg("uvs"), py::arg("uv_faces"), py::arg("num_vertices"),
           "faces: F x 3; uvs: T x 2 OBJ texture coordinates (v up); uv_faces: F x 3 into uvs, or None for "
           "per-vertex uvs (T = num_vertices).")
      .def(
          "set_mask_texture",
          [](MeshRenderer& r, const py::object& texture) { r.set_mask_texture(to_tensor(texture)); },
          py::arg("texture"),
          "C x Ht x Wt (or Ht x Wt) in [0, 1], sampled bilinearly (wrapping) at column (1 - u) W, row (1 - v) H as "
          "the official renderer does; None clears it (the mask is then the antialiased coverage).")
      .def(
          "set_region_masks", [](MeshRenderer& r, const py::object& masks) { r.set_region_masks(to_tensor(masks)); },
          py::arg("masks"), "V x R per-vertex region masks; None clears them.")
      .def(
          "render",
          [](const MeshRenderer& r, const torch::Tensor& vertices, const Camera& camera, bool uv, bool normals,
             bool mask, bool depth, bool regions, const py::object& normal_vertices) {
            render::RenderRequest req;
            req.uv = uv;
            req.normals = normals;
            req.mask = mask;
            req.depth = depth;
            req.regions = regions;
            req.normal_vertices = to_tensor(normal_vertices);
            py::gil_scoped_release release;
            return r.render(vertices, camera, req);
          },
          py::arg("vertices"), py::arg("camera"), py::arg("uv") = true, py::arg("normals") = true,
          py::arg("mask") = true, py::arg("depth") = true, py::arg("regions") = true,
          py::arg("normal_vertices") = py::none(),
          "vertices: B x V x 3 world (float32/float64) -> RenderOutput. normal_vertices: B x V x 3 to take the "
          "normals from (the official fitter passes the mesh posed without neck rotation).")
      .def("visibility", &MeshRenderer::visibility, py::arg("vertices"), py::arg("camera"), py::arg("depth"),
           py::arg("tolerance") = 0.01,
           "B x V bool official depth-test visibility of the vertices against a rendered depth image.")
      .def_property_readonly("num_vertices", &MeshRenderer::num_vertices)
      .def_property_readonly("num_faces", &MeshRenderer::num_faces)
      .def_property_readonly("faces", &MeshRenderer::faces, "F x 3 int64")
      .def_property_readonly("topology", &MeshRenderer::topology, "F x 3 int32 edge_topology of the faces")
      .def("__repr__", &MeshRenderer::repr);

  // --- synthetic meshes ---
  py::class_<render::TriangleMesh>(m, "TriangleMesh", "Synthetic mesh: shared positions, per-corner UVs.")
      .def_readonly("vertices", &render::TriangleMesh::vertices, "V x 3 float32")
      .def_readonly("faces", &render::TriangleMesh::faces, "F x 3 int64")
      .def_readonly("uvs", &render::TriangleMesh::uvs, "T x 2 float32 (u, v up)")
      .def_readonly("uv_faces", &render::TriangleMesh::uv_faces, "F x 3 int64 into uvs")
      .def("__repr__", [](const render::TriangleMesh& t) {
        return "TriangleMesh(vertices=" + std::to_string(t.vertices.size(0)) +
               ", faces=" + std::to_string(t.faces.size(0)) + ")";
      });
  m.def("uv_sphere", &render::uv_sphere, py::arg("rings"), py::arg("segments"), py::arg("radius") = 1.0,
        "Latitude-longitude sphere (poles on y, u = 0.5 facing +z): 2 segments (rings - 1) triangles.");
}

}  // namespace pixel3dmm::python
