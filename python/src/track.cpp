// Bindings of pixel3dmm/track: the video Tracker, its result, the synthetic video and the jitter measure.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "pixel3dmm/track/outputs.h"
#include "pixel3dmm/track/synthetic_evaluation.h"
#include "pixel3dmm/track/tracker.h"

namespace pixel3dmm::python {

namespace {

track::TrackerOptions tracker_options_from(const py::object& config) {
  return config.is_none() ? track::TrackerOptions{}
                          : io::parse_config<track::TrackerOptions>(to_json(config), "config");
}

}  // namespace

void bind_track(py::module_& m) {
  using track::TrackResult;
  using track::Tracker;
  m.def(
      "default_config", [] { return from_json(io::json(track::TrackerOptions{})); },
      "The default tracking settings (official video defaults) as a dict: the content of configs/track.json.");

  py::class_<TrackResult>(m, "TrackResult",
                          "A tracked sequence of N frames: params (fit.FitParams, N rows; shape / focal / pp shared),\n"
                          "online_params (after the online stage), vertices / vertices_flame (N x V x 3), canonical\n"
                          "(1 x V x 3), per-frame online_steps / online_loss, per-step global_loss, seconds per stage,\n"
                          "complete (False when on_progress stopped the run).")
      .def_readonly("params", &TrackResult::params)
      .def_readonly("online_params", &TrackResult::online_params)
      .def_property_readonly("vertices", [](const TrackResult& r) { return from_tensor(r.vertices); })
      .def_property_readonly("vertices_flame", [](const TrackResult& r) { return from_tensor(r.vertices_flame); })
      .def_property_readonly("canonical", [](const TrackResult& r) { return from_tensor(r.canonical); })
      .def_property_readonly("identity_prior", [](const TrackResult& r) { return from_tensor(r.identity_prior); },
                             "1 x n_shape: the mean of the frames' identity codes (None: no prior)")
      .def_readonly("online_steps", &TrackResult::online_steps)
      .def_readonly("online_loss", &TrackResult::online_loss)
      .def_readonly("global_loss", &TrackResult::global_loss)
      .def_readonly("online_seconds", &TrackResult::online_seconds)
      .def_readonly("global_seconds", &TrackResult::global_seconds)
      .def_readonly("complete", &TrackResult::complete)
      .def("__repr__", [](const TrackResult& r) {
        return "TrackResult(frames=" + std::to_string(r.online_steps.size()) +
               ", global_steps=" + std::to_string(r.global_loss.size()) +
               ", complete=" + std::string(r.complete ? "True" : "False") + ")";
      });

  py::class_<Tracker>(m, "Tracker",
                      "Video tracking (docs/tracking.md): an online stage frame by frame, then a global stage over\n"
                      "all frames (one identity and camera, temporal smoothness). flame: pixel3dmm.flame.Flame (6D\n"
                      "rotations, float32); config: dict with any keys of configs/track.json (missing keys keep the\n"
                      "official video defaults).")
      .def(py::init([](const std::shared_ptr<flame::FlameImpl>& flame, const py::object& config) {
             return Tracker(flame::Flame(flame), tracker_options_from(config));
           }),
           py::arg("flame"), py::arg("config") = py::none())
      .def_property_readonly("config", [](const Tracker& t) { return from_json(io::json(t.options())); })
      .def_property_readonly("fitter", [](const Tracker& t) { return t.fitter(); },
                             "The fit.Fitter of the per-frame terms (a copy).")
      .def(
          "track",
          [](const Tracker& t, const std::vector<fit::FitTarget>& frames, const py::object& state,
             const py::object& on_progress) {
            track::TrackCallback cb;
            if (!on_progress.is_none()) {
              cb = [on_progress](const track::TrackProgress& p) {
                py::gil_scoped_acquire acquire;
                py::dict d;
                d["stage"] = p.stage;
                d["done"] = p.done;
                d["total"] = p.total;
                d["loss"] = p.loss;
                d["steps"] = p.steps;
                const py::object r = on_progress(d);
                return r.is_none() ? true : r.cast<bool>();
              };
            }
            const std::string folder = state.is_none() ? "" : py::str(state).cast<std::string>();
            py::gil_scoped_release release;
            return t.track(frames, folder, cb);
          },
          py::arg("frames"), py::arg("state") = py::none(), py::arg("on_progress") = py::none(),
          "Tracks a list of fit.FitTarget (one per frame, in order); the frames' identity codes average into the\n"
          "identity prior. state: folder of the resumable state (None:\n"
          "none); a later call with the same folder, options and frames continues where this one stopped.\n"
          "on_progress(dict: stage 'online'/'global', done, total, loss, steps) after every frame / global step;\n"
          "returning False stops the run (result.complete = False).")
      .def(
          "write",
          [](const Tracker& t, const std::string& folder, const TrackResult& r, const std::vector<fit::FitTarget>& frames,
             bool video, bool per_frame, double fps) {
            track::TrackOutputOptions o;
            o.video = video;
            o.frames = per_frame;
            o.fps = fps;
            py::gil_scoped_release release;
            return track::write_track_outputs(folder, t, r, frames, o);
          },
          py::arg("folder"), py::arg("result"), py::arg("frames"), py::kw_only(), py::arg("video") = true,
          py::arg("per_frame") = true, py::arg("fps") = 25.0,
          "Writes sequence.safetensors / .json, frames/NNNNN/ (meshes, parameters), overlay.mp4 (or overlay/\n"
          "PNGs) and loss.png; returns the overlay's path.")
      .def("__repr__", [](const Tracker& t) {
        const auto& o = t.options();
        return "Tracker(image_size=" + std::to_string(o.fit.image_size) +
               ", online_iters=" + std::to_string(o.online.iters) + ", global_iters=" +
               std::to_string(o.global.iters) + ", batch_size=" + std::to_string(o.global.batch_size) +
               "; .config has every setting)";
      });

  m.def(
      "synthetic_video",
      [](const Tracker& t, int64_t frames, uint64_t seed, int64_t map_size, int64_t key_every, double neck_deg) {
        synth::SyntheticVideoOptions o;
        o.frames = frames;
        o.pose.neck_deg = neck_deg;
        o.seed = seed;
        o.maps.size = map_size;
        o.key_every = key_every;
        synth::SyntheticVideo v;
        {
          py::gil_scoped_release release;
          v = synth::make_synthetic_video(t.fitter(), o);
        }
        py::dict d;
        d["frames"] = v.frames;
        d["truth"] = v.truth;
        d["vertices"] = v.vertices;
        d["vertices_flame"] = v.vertices_flame;
        d["canonical"] = v.canonical;
        return d;
      },
      py::arg("tracker"), py::arg("frames") = 24, py::arg("seed") = 0, py::arg("map_size") = 256,
      py::arg("key_every") = 8, py::arg("neck_deg") = 0.0,
      "A synthetic video of one random head along a smooth random trajectory, rendered exactly (maps with noise\n"
      "and outliers; neck_deg > 0 also turns the neck) -> dict: frames (list of fit.FitTarget), truth\n"
      "(fit.FitParams, N rows), vertices / vertices_flame (N x V x 3 ground truth), canonical (1 x V x 3).");
  m.def(
      "vertex_jitter",
      [](const torch::Tensor& vertices, const std::optional<torch::Tensor>& subset) {
        return track::vertex_jitter(vertices, subset.value_or(torch::Tensor()));
      },
      py::arg("vertices"), py::arg("subset") = py::none(),
        "Mean |v[t+1] - 2 v[t] + v[t-1]| over frames and vertices (metres). vertices: N x V x 3 (N >= 3).");
}

}  // namespace pixel3dmm::python
