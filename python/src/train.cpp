// Bindings of pixel3dmm/train: datasets (manifest, samples, checks), the synthetic dataset generator and the
// trainer (a recipe run).
// Samples cross as dicts of tensors (the shape a PyTorch DataLoader collates).
#include <cmath>
#include <filesystem>

#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "pixel3dmm/train/checkpoint.h"
#include "pixel3dmm/train/dataset.h"
#include "pixel3dmm/train/recipe.h"
#include "pixel3dmm/synth/synthetic_dataset.h"

namespace pixel3dmm::python {

namespace {

using train::Dataset;
using train::DatasetProblem;

std::string path_str(const py::object& p) {
  return py::module_::import("os").attr("fspath")(p).cast<std::string>();
}

py::dict sample_dict(const train::TrainingSample& s) {
  py::dict d;
  d["id"] = s.id;
  d["image"] = from_tensor(s.image);
  d["uv"] = from_tensor(s.uv);
  d["normals"] = from_tensor(s.normals);
  d["mask"] = from_tensor(s.mask);
  return d;
}

py::dict entry_dict(const train::ManifestEntry& e) {
  py::dict d;
  d["line"] = e.line;
  d["id"] = e.id;
  auto path = [](const std::string& p) -> py::object { return p.empty() ? py::object(py::none()) : py::object(py::str(p)); };
  d["image"] = path(e.image);
  d["uv"] = path(e.uv);
  d["normals"] = path(e.normals);
  d["mask"] = path(e.mask);
  d["mesh"] = path(e.mesh);
  d["camera"] = e.camera.is_null() ? py::none() : from_json(e.camera);
  return d;
}

train::DatasetOptions dataset_options(const py::object& flame, bool cache_renders) {
  train::DatasetOptions o;
  o.flame = flame.is_none() ? "" : path_str(flame);
  o.cache_renders = cache_renders;
  return o;
}

std::function<void(int64_t, int64_t)> progress_from(const py::object& fn) {
  if (fn.is_none()) return {};
  return [fn](int64_t done, int64_t total) {
    py::gil_scoped_acquire acquire;
    fn(done, total);
  };
}

py::dict metrics_dict(const train::ValidationMetrics& m) {
  py::dict d;
  d["step"] = m.step;
  d["samples"] = m.samples;
  d["loss"] = m.loss;
  auto number = [](double v) -> py::object { return std::isfinite(v) ? py::object(py::float_(v)) : py::none(); };
  d["uv_error"] = number(m.uv_error);
  d["uv_error_px"] = number(m.uv_error_px);
  d["normal_error_deg"] = number(m.normal_error_deg);
  return d;
}

py::dict log_dict(const train::TrainLogEntry& e) {
  py::dict d;
  d["step"] = e.step;
  d["epoch"] = e.epoch;
  d["lr"] = e.lr;
  d["loss"] = e.loss;
  d["grad_norm"] = e.grad_norm;
  d["images_per_second"] = e.images_per_second;
  d["elapsed_s"] = e.elapsed_s;
  return d;
}

/// A Python callable(dict) as a callback taking `T` converted by `convert`; None -> no callback.
template <typename T>
std::function<void(const T&)> callback_from(const py::object& fn, py::dict (*convert)(const T&)) {
  if (fn.is_none()) return {};
  return [fn, convert](const T& value) {
    py::gil_scoped_acquire acquire;
    fn(convert(value));
  };
}

train::TrainingRecipe recipe_from(const py::object& recipe, const std::vector<std::string>& overrides) {
  if (py::isinstance<py::dict>(recipe))
    return train::TrainingRecipe::from_json(to_json(recipe), std::filesystem::current_path().string(), "recipe",
                                            overrides);
  return train::TrainingRecipe::read(path_str(recipe), overrides);
}

}  // namespace

void bind_train(py::module_& m) {
  // --- datasets ---
  py::class_<Dataset>(m, "Dataset",
                      "A training dataset: a JSON-lines manifest of samples (docs/datasets.md).\n"
                      "dataset[i] -> {'id': str, 'image': 3 x H x W, 'uv': 2 x H x W or None, 'normals': 3 x H x W "
                      "or None, 'mask': 1 x H x W} (float32; uv = (u, 1 - v) in [0, 1], normals in the FLAME frame, "
                      "mask in {0, 1}). Mesh samples are rendered with the FLAME model `flame` (None = the synthetic "
                      "FLAME-layout model). Loading releases the GIL, so a DataLoader's threads load in parallel.")
      .def(py::init([](const py::object& manifest, const py::object& flame, bool cache_renders) {
             return Dataset::open(path_str(manifest), dataset_options(flame, cache_renders));
           }),
           py::arg("manifest"), py::arg("flame") = py::none(), py::arg("cache_renders") = true,
           "Parses the manifest: FileNotFoundError if missing, ValueError naming the line for a bad one.")
      .def_static(
          "open",
          [](const py::object& manifest, const py::object& flame, bool cache_renders) {
            return Dataset::open(path_str(manifest), dataset_options(flame, cache_renders));
          },
          py::arg("manifest"), py::arg("flame") = py::none(), py::arg("cache_renders") = true,
          "The same as Dataset(manifest, flame, cache_renders).")
      .def("__len__", &Dataset::size)
      .def(
          "__getitem__",
          [](const Dataset& d, int64_t i) {
            if (i < 0) i += d.size();
            if (i < 0 || i >= d.size()) throw py::index_error("Dataset index out of range");
            train::TrainingSample s;
            {
              py::gil_scoped_release release;
              s = d.get(i);
            }
            return sample_dict(s);
          },
          py::arg("index"),
          "Loads sample `index` (negative counts from the end): a dict of tensors (see the class). Errors name the "
          "file and the manifest line: FileNotFoundError, ValueError.")
      .def(
          "entry",
          [](const Dataset& d, int64_t i) {
            if (i < 0) i += d.size();
            if (i < 0 || i >= d.size()) throw py::index_error("Dataset index out of range");
            return entry_dict(d.entry(i));
          },
          py::arg("index"),
          "The manifest line of sample `index`: {'line', 'id', 'image', 'uv', 'normals', 'mask', 'mesh' "
          "(absolute paths or None), 'camera' (dict or None)}.")
      .def_property_readonly("manifest", &Dataset::manifest, "The manifest's path.")
      .def_property_readonly("root", &Dataset::root, "The folder relative paths are resolved against.")
      .def("__repr__", [](const Dataset& d) {
        return "Dataset('" + d.manifest() + "', samples=" + std::to_string(d.size()) + ")";
      });

  py::class_<DatasetProblem>(m, "DatasetProblem", "A problem check_dataset found with one sample.")
      .def_readonly("index", &DatasetProblem::index, "Sample index (-1: the manifest as a whole).")
      .def_readonly("line", &DatasetProblem::line, "Manifest line (1-based; 0 if unknown).")
      .def_readonly("id", &DatasetProblem::id, "Sample id ('' for the manifest).")
      .def_readonly("file", &DatasetProblem::file, "The offending file.")
      .def_readonly("reason", &DatasetProblem::reason, "What is wrong.")
      .def("__repr__", [](const DatasetProblem& p) {
        return "DatasetProblem(line=" + std::to_string(p.line) + ", id='" + p.id + "', file='" + p.file +
               "', reason='" + p.reason + "')";
      })
      .def("__str__", [](const DatasetProblem& p) {
        return "line " + std::to_string(p.line) + (p.id.empty() ? "" : " (" + p.id + ")") + ": " + p.file + ": " +
               p.reason;
      });

  m.def(
      "check_dataset",
      [](const py::object& manifest, const py::object& flame, const py::object& progress) {
        const auto options = dataset_options(flame, false);
        const auto fn = progress_from(progress);
        const std::string path = path_str(manifest);
        py::gil_scoped_release release;
        return train::check_dataset(path, options, fn);
      },
      py::arg("manifest"), py::arg("flame") = py::none(), py::arg("progress") = py::none(),
      "Loads every sample and returns every problem (list of DatasetProblem: index, line, id, file, reason); an "
      "empty list for a clean dataset. A manifest that does not parse gives one problem with index -1. "
      "progress(done, total) is called after each sample.");

  // --- synthetic data ---
  m.def(
      "render_synthetic_photo",
      [](const fit::Fitter& fitter, uint64_t seed, int64_t index, int64_t size, double max_noise,
         double max_specular, const std::optional<fit::FitParams>& params) {
        synth::SyntheticPhotoOptions o;
        o.size = size;
        o.max_noise = max_noise;
        o.max_specular = max_specular;
        synth::SyntheticPhoto p;
        {
          py::gil_scoped_release release;
          p = params ? synth::render_synthetic_photo(fitter, *params, seed, o)
                     : synth::render_synthetic_photo(fitter, seed, index, o);
        }
        py::dict d = sample_dict(train::TrainingSample{p.id, p.image, p.uv, p.normals, p.mask});
        d["params"] = p.params;
        d["camera"] = p.camera;
        py::dict cv;
        cv["K"] = p.opencv.K;
        cv["R"] = p.opencv.R;
        cv["t"] = p.opencv.t;
        d["opencv_camera"] = cv;
        d["vertices"] = p.vertices;
        d["vertices_flame"] = p.vertices_flame;
        d["landmarks"] = p.landmarks;
        d["alpha"] = p.alpha;
        d["albedo"] = p.albedo;
        return d;
      },
      py::arg("fitter"), py::arg("seed") = 0, py::arg("index") = 0, py::arg("size") = 256,
      py::arg("max_noise") = 0.01, py::arg("max_specular") = 0.15, py::arg("params") = py::none(),
      "Synthetic photo `index` of dataset `seed` (deterministic) with the fitter's FLAME model, or with `params` "
      "(batch-1 FitParams) the photo of that head, `seed` drawing only its appearance: a dict with the "
      "sample ('id', 'image' 3 x S x S, 'uv' 2 x S x S, 'normals' 3 x S x S, 'mask' 1 x S x S, exact targets) "
      "and the truth: 'params' (FitParams), 'camera' (Camera at S), 'opencv_camera' {'K', 'R', 't'} of the "
      "FLAME-frame mesh, 'vertices' / 'vertices_flame' 1 x V x 3, 'landmarks' 1 x 68 x 2 pixels, 'alpha' "
      "1 x S x S antialiased coverage, 'albedo' V x 3.");
  m.def(
      "synthetic_albedo",
      [](const flame::FlameModel& model, uint64_t seed) { return synth::synthetic_albedo(model, seed); },
      py::arg("model"), py::arg("seed") = 0,
      "Random per-vertex face colours (V x 3 float32 in [0, 1]): skin, brows, hair, lips, eyes.");
  m.def(
      "write_synthetic_dataset",
      [](const py::object& folder, int64_t count, int64_t size, uint64_t seed, bool png_targets, bool meshes,
         const py::object& flame, const py::object& progress) {
        synth::SyntheticDatasetOptions o;
        o.count = count;
        o.photo.size = size;
        o.seed = seed;
        o.png_targets = png_targets;
        o.meshes = meshes;
        o.flame = flame.is_none() ? "" : path_str(flame);
        const auto fn = progress_from(progress);
        const std::string path = path_str(folder);
        py::gil_scoped_release release;
        return synth::write_synthetic_dataset(path, o, fn);
      },
      py::arg("folder"), py::arg("count") = 100, py::arg("size") = 256, py::arg("seed") = 0,
      py::arg("png_targets") = false, py::arg("meshes") = false, py::arg("flame") = py::none(),
      py::arg("progress") = py::none(),
      "Writes a synthetic dataset folder (rgb/, uv/, normals/, mask/, params/, manifest.jsonl; meshes/ and "
      "manifest_meshes.jsonl with meshes=True) whole or not at all, and returns the manifest's path. uv / normals "
      "are exact float32 .npy (H x W x C) unless png_targets. progress(done, count) after each chunk.");

  m.def("learning_rate_factor", &train::learning_rate_factor, py::arg("step"), py::arg("warmup_steps"),
        py::arg("steps"),
        "The official CosineWarmupScheduler's factor of the base learning rate at 0-based optimiser step `step`.");
  m.def("list_checkpoints", [](const py::object& run_dir) { return train::list_checkpoints(path_str(run_dir)); },
        py::arg("run_dir"), "The complete checkpoint folders of a run, oldest first (partial ones are skipped).");
  m.def(
      "latest_checkpoint",
      [](const py::object& run_dir) -> py::object {
        const auto p = train::latest_checkpoint(path_str(run_dir));
        return p ? py::object(py::str(*p)) : py::none();
      },
      py::arg("run_dir"), "The newest complete checkpoint folder of a run, or None.");

  py::class_<train::TrainingRun>(m, "Trainer", R"doc(
Trains one Pixel3DMM network (UV or normals) from a recipe, as `pixel3dmm train` does (docs/training.md).

    trainer = pixel3dmm.Trainer("training/recipes/demo-uv.json", "runs/uv",
                                overrides=["trainer.steps=200"])
    metrics = trainer.train(on_log=print)      # {'loss', 'uv_error', 'uv_error_px', ...}
    net = trainer.network                      # a pixel3dmm.nn.Pixel3DMMNet

`recipe` is a recipe file or a dict of the same layout (relative paths then resolve against the working folder).
With resume=True the run continues exactly from the newest checkpoint in `run_dir`; without it a run folder that
already has checkpoints is refused. Started by torchrun or srun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set),
every process constructs its Trainer and calls train() together: each trains on its share of every global batch and
only rank 0 writes files and calls the callbacks (docs/distributed.md).)doc")
      .def(py::init([](const py::object& recipe, const py::object& run_dir, bool resume,
                       const std::vector<std::string>& overrides, const py::object& progress) {
             auto r = recipe_from(recipe, overrides);
             const std::string dir = path_str(run_dir);
             std::function<void(const std::string&, int64_t, int64_t)> report;
             if (!progress.is_none())
               report = [progress](const std::string& stage, int64_t done, int64_t total) {
                 py::gil_scoped_acquire acquire;
                 progress(stage, done, total);
               };
             py::gil_scoped_release release;
             return std::make_unique<train::TrainingRun>(std::move(r), dir, resume, report);
           }),
           py::arg("recipe"), py::arg("run_dir"), py::arg("resume") = false,
           py::arg("overrides") = std::vector<std::string>{}, py::arg("progress") = py::none())
      .def(
          "train",
          [](train::TrainingRun& run, const py::object& on_log, const py::object& on_validation) {
            train::TrainCallbacks cb;
            cb.on_log = callback_from<train::TrainLogEntry>(on_log, &log_dict);
            cb.on_validation = callback_from<train::ValidationMetrics>(on_validation, &metrics_dict);
            train::ValidationMetrics m;
            {
              py::gil_scoped_release release;
              m = run.train(cb);
            }
            return metrics_dict(m);
          },
          py::arg("on_log") = py::none(), py::arg("on_validation") = py::none(),
          "Trains to the recipe's step count. on_log(dict) every log_every steps, on_validation(dict) after each "
          "validation. Returns the final validation metrics (a dict).")
      .def(
          "validate",
          [](train::TrainingRun& run) {
            train::ValidationMetrics m;
            {
              py::gil_scoped_release release;
              m = run.validate();
            }
            return metrics_dict(m);
          },
          "Validation metrics of the current network on the recipe's validation data.")
      .def("save_checkpoint", [](train::TrainingRun& run) { return run.trainer().save_checkpoint(); },
           "Writes a checkpoint of the current state now; returns its folder.")
      .def_property_readonly("step", [](train::TrainingRun& run) { return run.trainer().step(); })
      .def_property_readonly("rank", [](const train::TrainingRun& run) { return run.process_group().rank(); },
                             "this process's rank (RANK / SLURM_PROCID; 0 when not launched by torchrun or srun)")
      .def_property_readonly("world_size", [](const train::TrainingRun& run) { return run.process_group().world_size(); },
                             "processes training together (WORLD_SIZE / SLURM_NTASKS; 1 by default)")
      .def_property_readonly("run_dir", [](train::TrainingRun& run) { return run.trainer().run_dir(); })
      .def_property_readonly("network", [](train::TrainingRun& run) { return run.trainer().network().ptr(); },
                             "The network being trained (a pixel3dmm.nn.Pixel3DMMNet sharing its parameters).")
      .def_property_readonly("recipe", [](const train::TrainingRun& run) { return from_json(run.recipe().to_json()); })
      .def_property_readonly("train_size", [](const train::TrainingRun& run) { return run.train_data().size; })
      .def_property_readonly("val_size", [](const train::TrainingRun& run) { return run.val_data().size; })
      .def("__repr__", [](train::TrainingRun& run) {
        const auto& r = run.recipe();
        return "Trainer(" + nn::to_string(r.network.prediction_type) + ", " + r.network.backbone_name + " " +
               std::to_string(r.network.image_size) + " px, step " + std::to_string(run.trainer().step()) + "/" +
               std::to_string(r.trainer.steps) + ", " + std::to_string(run.train_data().size) + " training / " +
               std::to_string(run.val_data().size) + " validation samples, run_dir='" + run.trainer().run_dir() +
               "')";
      });
}

}  // namespace pixel3dmm::python
