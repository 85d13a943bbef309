// Bindings of pixel3dmm/flame: FlameModel, Flame, the synthetic model and the rotation helpers.
#include "pixel3dmm/flame/flame.h"

#include <optional>
#include <sstream>

#include "bindings.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/flame/lbs.h"
#include "pixel3dmm/flame/rotation.h"
#include "pixel3dmm/synth/synthetic_flame.h"

namespace pixel3dmm::python {
namespace {

using flame::FlameImpl;
using flame::FlameModel;
using flame::FlameOutput;
using flame::FlameParams;
using OptTensor = std::optional<torch::Tensor>;

torch::Dtype to_dtype(const py::object& dtype) {
  if (py::isinstance<py::str>(dtype)) {
    const auto s = dtype.cast<std::string>();
    if (s == "float32" || s == "float") return torch::kFloat;
    if (s == "float64" || s == "double") return torch::kDouble;
    throw ValueError("dtype: expected torch.float32 or torch.float64, found '" + s + "'");
  }
  return torch::python::detail::py_object_to_dtype(dtype);
}

py::dict output_dict(const FlameOutput& o) {
  py::dict d;
  d["vertices"] = from_tensor(o.vertices);
  d["vertices_noneck"] = from_tensor(o.vertices_noneck);
  d["v_shaped"] = from_tensor(o.v_shaped);
  d["joints"] = from_tensor(o.joints);
  d["transforms"] = from_tensor(o.transforms);
  d["landmarks"] = from_tensor(o.landmarks);
  d["contour_bin"] = from_tensor(o.contour_bin);
  return d;
}

py::dict params_dict(const FlameParams& p) {
  py::dict d;
  d["shape"] = from_tensor(p.shape);
  d["expression"] = from_tensor(p.expression);
  d["global_rotation"] = from_tensor(p.global_rotation);
  d["neck_pose"] = from_tensor(p.neck_pose);
  d["jaw_pose"] = from_tensor(p.jaw_pose);
  d["eye_pose"] = from_tensor(p.eye_pose);
  d["eyelids"] = from_tensor(p.eyelids);
  d["translation"] = from_tensor(p.translation);
  return d;
}

py::dict forward(FlameImpl& self, const OptTensor& shape, const OptTensor& expression, const OptTensor& global_rotation,
                 const OptTensor& neck_pose, const OptTensor& jaw_pose, const OptTensor& eye_pose,
                 const OptTensor& eyelids, const OptTensor& translation, const OptTensor& landmark_rotation) {
  FlameParams p;
  p.shape = shape.value_or(torch::Tensor());
  p.expression = expression.value_or(torch::Tensor());
  p.global_rotation = global_rotation.value_or(torch::Tensor());
  p.neck_pose = neck_pose.value_or(torch::Tensor());
  p.jaw_pose = jaw_pose.value_or(torch::Tensor());
  p.eye_pose = eye_pose.value_or(torch::Tensor());
  p.eyelids = eyelids.value_or(torch::Tensor());
  p.translation = translation.value_or(torch::Tensor());
  p.landmark_rotation = landmark_rotation.value_or(torch::Tensor());
  FlameOutput out;
  {
    py::gil_scoped_release release;
    out = self.forward(p);
  }
  return output_dict(out);
}

constexpr const char* kForwardDoc =
    R"doc(Runs FLAME. Every argument is optional (zero coefficients, identity rotations) and
keyword-only in spirit; all given tensors share the batch size B and the module's dtype.

shape: B x n_shape; expression: B x n_expr; global_rotation, neck_pose, jaw_pose: B x 6 (6D, the first two rows of
the rotation matrix) or B x 3 (axis-angle) per the module's `rotation`; eye_pose: B x 12 or B x 6 (left eye first);
eyelids: B x 2 (l, r; added after skinning); translation: B x 3 metres; landmark_rotation: B x 3 x 3, replaces the
global rotation when choosing the yaw-dependent contour.

Returns a dict: vertices B x V x 3, vertices_noneck B x V x 3 (neck at rest, no eyelids; None unless
compute_noneck), v_shaped B x V x 3 (template + identity + expression), joints B x 5 x 3, transforms B x 5 x 4 x 4,
landmarks B x 68 x 3 (17 contour + 51 static, iBUG order; None without an embedding), contour_bin B (int64).)doc";

}  // namespace

void bind_flame(py::module_& m) {
  // ---- rotations ----
  m.def("axis_angle_to_matrix", &flame::axis_angle_to_matrix, py::arg("aa"),
        "Rodrigues: (..., 3) radians -> (..., 3, 3); exact value and gradient at zero.");
  m.def("matrix_to_axis_angle", &flame::matrix_to_axis_angle, py::arg("R"),
        "(..., 3, 3) -> (..., 3) rotation vector, angle in [0, pi].");
  m.def("rotation_6d_to_matrix", &flame::rotation_6d_to_matrix, py::arg("d6"),
        "(..., 6) -> (..., 3, 3): Gram-Schmidt of the two ROWS (official rotation_6d_to_matrix).");
  m.def("matrix_to_rotation_6d", &flame::matrix_to_rotation_6d, py::arg("R"),
        "(..., 3, 3) -> (..., 6): the first two rows.");
  m.def("axis_angle_to_rotation_6d", &flame::axis_angle_to_rotation_6d, py::arg("aa"), "(..., 3) -> (..., 6).");
  m.def("rotation_6d_to_axis_angle", &flame::rotation_6d_to_axis_angle, py::arg("d6"), "(..., 6) -> (..., 3).");
  m.def("matrix_to_quaternion", &flame::matrix_to_quaternion, py::arg("R"),
        "(..., 3, 3) -> (..., 4) (w, x, y, z), w >= 0.");
  m.def("quaternion_to_matrix", &flame::quaternion_to_matrix, py::arg("q"), "(..., 4) (w, x, y, z) -> (..., 3, 3).");
  m.def("rotation_yaw", &flame::rotation_yaw, py::arg("R"),
        "(..., 3, 3) -> (...): atan2(-R20, sqrt(R00^2 + R10^2)), FLAME's yaw (radians).");
  m.def("dynamic_contour_bin", &flame::dynamic_contour_bin, py::arg("rel_rotation"), py::arg("n_bins") = 79,
        "B x 3 x 3 relative rotation (R_root R_neck) -> B int64 row of the dynamic contour table (official formula).");
  m.def(
      "lbs",
      [](const torch::Tensor& v_shaped, const torch::Tensor& joints, const torch::Tensor& rotations,
         const OptTensor& posedirs, const std::vector<int64_t>& parents, const torch::Tensor& weights) {
        const auto o = flame::lbs(v_shaped, joints, rotations, posedirs.value_or(torch::Tensor()), parents, weights);
        return py::make_tuple(o.vertices, o.joints, o.transforms);
      },
      py::arg("v_shaped"), py::arg("joints"), py::arg("rotations"), py::arg("posedirs"), py::arg("parents"),
      py::arg("weights"),
      "Linear blend skinning. v_shaped B x V x 3, joints B x J x 3 (rest), rotations B x J x 3 x 3, posedirs "
      "9(J-1) x 3V or None, parents (J ints, -1 root), weights V x J -> (vertices B x V x 3, posed joints B x J x 3, "
      "transforms B x J x 4 x 4).");

  // ---- FlameModel ----
  py::class_<FlameModel>(m, "FlameModel",
                         "The arrays of a FLAME file (our .npz/.safetensors layout, docs/flame.md). Floats float64, "
                         "indices int64.")
      .def_static("load", &FlameModel::load, py::arg("path"),
                  "Loads .npz or .safetensors; FileNotFoundError / ValueError name the file, key, expected vs found.")
      .def_static(
          "synthetic",
          [](int64_t vertices, int64_t n_shape, int64_t n_expr, uint64_t seed) {
            py::gil_scoped_release release;
            return synth::synthetic_flame(
                synth::SyntheticFlameOptions().vertices(vertices).n_shape(n_shape).n_expr(n_expr).seed(seed));
          },
          py::arg("vertices") = 5023, py::arg("n_shape") = 300, py::arg("n_expr") = 100, py::arg("seed") = 0,
          "The deterministic synthetic head with FLAME's layout (5023 vertices = FLAME's 3931 head + 2 x 546 eyes).")
      .def_static(
          "from_tensors",
          [](const io::TensorMap& tensors, const std::string& source) {
            return FlameModel::from_tensors(tensors, source);
          },
          py::arg("tensors"), py::arg("source") = "<memory>", "Builds and validates a model from {key: tensor}.")
      .def(
          "save",
          [](const FlameModel& self, const std::string& path, const py::object& dtype) {
            self.save(path, to_dtype(dtype));
          },
          py::arg("path"), py::arg("dtype") = py::str("float64"),
          "Writes .npz (compressed) or .safetensors, atomically; floats stored as `dtype`.")
      .def(
          "to_tensors", [](const FlameModel& self) { return self.to_tensors(); },
          "{key: tensor} in the file layout.")
      .def("validate", &FlameModel::validate, "Re-checks every array; raises ValueError naming the key.")
      .def_readonly("v_template", &FlameModel::v_template, "V x 3 (metres)")
      .def_readonly("faces", &FlameModel::faces, "F x 3 int64")
      .def_readonly("shapedirs", &FlameModel::shapedirs, "V x 3 x K: identity then expression components")
      .def_readonly("n_shape_basis", &FlameModel::n_shape_basis)
      .def_readonly("posedirs", &FlameModel::posedirs, "V x 3 x 9(J-1)")
      .def_readonly("J_regressor", &FlameModel::J_regressor, "J x V")
      .def_readonly("kintree_table", &FlameModel::kintree_table, "2 x J int64")
      .def_readonly("lbs_weights", &FlameModel::lbs_weights, "V x J")
      .def_property_readonly(
          "vertex_uv", [](const FlameModel& s) { return from_tensor(s.vertex_uv); }, "V x 2")
      .def_property_readonly(
          "uv_coords", [](const FlameModel& s) { return from_tensor(s.uv_coords); }, "T x 2 (vt)")
      .def_property_readonly(
          "uv_faces", [](const FlameModel& s) { return from_tensor(s.uv_faces); }, "F x 3 (ft)")
      .def_property_readonly("static_lmk_faces_idx",
                             [](const FlameModel& s) { return from_tensor(s.static_lmk_faces_idx); })
      .def_property_readonly("static_lmk_bary_coords",
                             [](const FlameModel& s) { return from_tensor(s.static_lmk_bary_coords); })
      .def_property_readonly("dynamic_lmk_faces_idx",
                             [](const FlameModel& s) { return from_tensor(s.dynamic_lmk_faces_idx); })
      .def_property_readonly("dynamic_lmk_bary_coords",
                             [](const FlameModel& s) { return from_tensor(s.dynamic_lmk_bary_coords); })
      .def_property_readonly("l_eyelid", [](const FlameModel& s) { return from_tensor(s.l_eyelid); })
      .def_property_readonly("r_eyelid", [](const FlameModel& s) { return from_tensor(s.r_eyelid); })
      .def_property_readonly("mirror_index", [](const FlameModel& s) { return from_tensor(s.mirror_index); })
      .def_property_readonly(
          "masks",
          [](const FlameModel& s) {
            py::dict d;
            for (const auto& [k, v] : s.masks) d[py::str(k)] = v;
            return d;
          },
          "{region name: vertex indices}")
      .def_readonly("source", &FlameModel::source)
      .def_property_readonly("n_vertices", &FlameModel::n_vertices)
      .def_property_readonly("n_faces", &FlameModel::n_faces)
      .def_property_readonly("n_joints", &FlameModel::n_joints)
      .def_property_readonly("n_expr_basis", &FlameModel::n_expr_basis)
      .def_property_readonly("parents", &FlameModel::parents)
      .def("__repr__", &flame::describe);

  // ---- Flame ----
  py::class_<FlameImpl, std::shared_ptr<FlameImpl>>(
      m, "Flame", "Differentiable FLAME (blendshapes, pose correctives, LBS, eyelids, 68 landmarks).")
      .def(py::init([](const FlameModel& model, int64_t n_shape, int64_t n_expr, const std::string& rotation,
                       const py::object& dtype, bool zero_jaw, bool compute_noneck) {
             return std::make_shared<FlameImpl>(model, flame::FlameOptions()
                                                           .n_shape(n_shape)
                                                           .n_expr(n_expr)
                                                           .rotation(flame::parse_rotation_rep(rotation))
                                                           .dtype(to_dtype(dtype))
                                                           .zero_jaw(zero_jaw)
                                                           .compute_noneck(compute_noneck));
           }),
           py::arg("model"), py::arg("n_shape") = -1, py::arg("n_expr") = -1, py::arg("rotation") = "6d",
           py::arg("dtype") = py::str("float32"), py::arg("zero_jaw") = false, py::arg("compute_noneck") = true,
           "model: FlameModel; n_shape / n_expr: components used (-1 = all); rotation: '6d' or 'axis_angle'; "
           "dtype: torch.float32 or torch.float64; zero_jaw: identity jaw (official FLAME 2023 no-jaw); "
           "compute_noneck: also return vertices_noneck.")
      .def("forward", &forward, py::arg("shape") = py::none(), py::arg("expression") = py::none(),
           py::arg("global_rotation") = py::none(), py::arg("neck_pose") = py::none(), py::arg("jaw_pose") = py::none(),
           py::arg("eye_pose") = py::none(), py::arg("eyelids") = py::none(), py::arg("translation") = py::none(),
           py::arg("landmark_rotation") = py::none(), kForwardDoc)
      .def("__call__", &forward, py::arg("shape") = py::none(), py::arg("expression") = py::none(),
           py::arg("global_rotation") = py::none(), py::arg("neck_pose") = py::none(), py::arg("jaw_pose") = py::none(),
           py::arg("eye_pose") = py::none(), py::arg("eyelids") = py::none(), py::arg("translation") = py::none(),
           py::arg("landmark_rotation") = py::none(), kForwardDoc)
      .def(
          "neutral_params", [](const FlameImpl& self, int64_t b) { return params_dict(self.neutral_params(b)); },
          py::arg("batch_size") = 1, "Zero coefficients and identity rotations, as a dict of forward() arguments.")
      .def(
          "to",
          [](FlameImpl& self, const py::object& dtype) -> FlameImpl& {
            self.to(to_dtype(dtype));
            return self;
          },
          py::arg("dtype"), py::return_value_policy::reference_internal, "Converts the buffers (float32/float64).")
      .def(
          "buffers",
          [](const FlameImpl& self) {
            py::dict d;
            for (const auto& b : self.named_buffers()) d[py::str(b.key())] = b.value();
            return d;
          },
          "{name: tensor} of the pre-reshaped bases.")
      .def_property_readonly("faces", &FlameImpl::faces, "F x 3 int64")
      .def_property_readonly("n_shape", &FlameImpl::n_shape)
      .def_property_readonly("n_expr", &FlameImpl::n_expr)
      .def_property_readonly("n_vertices", &FlameImpl::n_vertices)
      .def_property_readonly("rotation", [](const FlameImpl& s) { return flame::to_string(s.options().rotation()); })
      .def_property_readonly(
          "dtype",
          [](const FlameImpl& s) {
            return py::module_::import("torch").attr(s.dtype() == torch::kDouble ? "float64" : "float32");
          })
      .def_property_readonly("model", &FlameImpl::model, py::return_value_policy::reference_internal)
      .def("__repr__", [](const FlameImpl& s) {
        std::ostringstream o;
        s.pretty_print(o);
        return o.str();
      });

  m.def(
      "synthetic_flame",
      [](int64_t vertices, int64_t n_shape, int64_t n_expr, uint64_t seed) {
        py::gil_scoped_release release;
        return synth::synthetic_flame(
            synth::SyntheticFlameOptions().vertices(vertices).n_shape(n_shape).n_expr(n_expr).seed(seed));
      },
      py::arg("vertices") = 5023, py::arg("n_shape") = 300, py::arg("n_expr") = 100, py::arg("seed") = 0,
      "Same as FlameModel.synthetic.");
}

}  // namespace pixel3dmm::python
