#pragma once
/// A training recipe: everything `pixel3dmm train` needs in one JSON file (training/recipes/*.json):
///   {"network": NetworkConfig, "trainer": TrainerOptions,
///    "data": {"train": "manifest.jsonl", "val": "val.jsonl", "flame": "", "synthetic": {...}},
///    "init": "", "backbone_weights": ""}
/// Relative paths are resolved against the recipe file's folder. With data.synthetic.count > 0 and no train
/// manifest, the run generates a synthetic dataset into `<run>/data/` first (deterministic by its seed).

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pixel3dmm/io/config.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/train/data_loader.h"
#include "pixel3dmm/train/trainer.h"

namespace pixel3dmm::train {

/// A synthetic dataset to generate for the run (train_count + val_count heads of the synthetic FLAME-layout
/// model, or of data.flame).
struct SyntheticDataSpec {
  int64_t count = 0;      ///< training samples (0: no synthetic data)
  int64_t val_count = 0;  ///< held-out validation samples (seeds after the training ones)
  int64_t size = 256;     ///< rendered image side (pixels)
  uint64_t seed = 0;
  /// Where to generate it (relative to the recipe); empty: `<run>/data`. Runs that share a folder share the data
  /// (generated once: the folder records the settings it was made with).
  std::string folder;
};
PIXEL3DMM_CONFIG(SyntheticDataSpec, count, val_count, size, seed, folder)

struct DataSpec {
  std::string train;  ///< manifest (JSON lines, see dataset.h)
  std::string val;    ///< validation manifest (optional)
  std::string flame;  ///< FLAME model for mesh samples and synthetic data (empty: the synthetic model)
  SyntheticDataSpec synthetic;
};
PIXEL3DMM_CONFIG(DataSpec, train, val, flame, synthetic)

struct TrainingRecipe {
  nn::NetworkConfig network;
  TrainerOptions trainer;
  DataSpec data;
  std::string init;              ///< network weights to start from (.safetensors + .json beside; optional)
  std::string backbone_weights;  ///< timm backbone weights (.safetensors) to start from (optional)

  /// Parses a recipe, with `overrides` ("trainer.steps=100") applied first. Relative paths are resolved against
  /// `base_dir`. Errors name `where` and the key.
  static TrainingRecipe from_json(nlohmann::json j, const std::string& base_dir, const std::string& where,
                                  const std::vector<std::string>& overrides = {});
  /// Reads a recipe file (FileNotFound / FormatError name it).
  static TrainingRecipe read(const std::string& path, const std::vector<std::string>& overrides = {});
  nlohmann::json to_json() const;
};

/// The training and validation samples of a recipe. A synthetic dataset (data.synthetic) is generated into
/// `<folder>/train` and `<folder>/val` (folder: data.synthetic.folder, else `<run_dir>/data`) unless already there. `progress(stage, done, total)` reports
/// the generation. The validation source is empty when the recipe has none.
std::pair<SampleSource, SampleSource> open_recipe_data(
    const TrainingRecipe& recipe, const std::string& run_dir,
    const std::function<void(const std::string&, int64_t, int64_t)>& progress = {});

/// The network a recipe starts from: `init` weights, else random weights from trainer.seed; then
/// `backbone_weights` when given (strict loads: mismatches are FormatErrors naming the file and tensors).
nn::Pixel3DMMNet recipe_initial_network(const TrainingRecipe& recipe);

/// A recipe set up in a run folder: its data opened (generated if synthetic), its network built or restored and a
/// Trainer ready. What `pixel3dmm train` and Python's `pixel3dmm.Trainer` run.
class TrainingRun {
 public:
  /// Writes recipe.json to `run_dir`. With `resume`, continues from the newest checkpoint (a fresh start when there
  /// is none); without it, a run folder that already has checkpoints is refused (ValueError), so a finished run is
  /// never overwritten by accident. `progress(stage, done, total)` reports data generation.
  /// Launched by torchrun / srun (RANK, WORLD_SIZE, ... set: distributed::Environment::from_env), it joins the
  /// other processes first; rank 0 writes recipe.json and generates synthetic data while the others wait, and
  /// training then shards every global batch over the ranks (docs/distributed.md).
  TrainingRun(TrainingRecipe recipe, const std::string& run_dir, bool resume,
              const std::function<void(const std::string&, int64_t, int64_t)>& progress = {});
  /// The same in the process group `group` (instead of the one the environment describes).
  TrainingRun(TrainingRecipe recipe, const std::string& run_dir, bool resume, distributed::ProcessGroup group,
              const std::function<void(const std::string&, int64_t, int64_t)>& progress = {});

  /// Trains to recipe.trainer.steps; returns the final validation.
  ValidationMetrics train(const TrainCallbacks& callbacks = {});
  ValidationMetrics validate() { return trainer_->validate(val_); }

  const TrainingRecipe& recipe() const { return recipe_; }
  Trainer& trainer() { return *trainer_; }
  const SampleSource& train_data() const { return train_; }
  const SampleSource& val_data() const { return val_; }
  const distributed::ProcessGroup& process_group() const { return trainer_->process_group(); }

 private:
  TrainingRecipe recipe_;
  SampleSource train_, val_;
  std::unique_ptr<Trainer> trainer_;
};

}  // namespace pixel3dmm::train
