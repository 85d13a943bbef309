#include "pixel3dmm/train/recipe.h"

#include <filesystem>
#include <tuple>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/train/checkpoint.h"
#include "pixel3dmm/train/dataset.h"
#include "pixel3dmm/synth/synthetic_dataset.h"

namespace pixel3dmm::train {
namespace fs = std::filesystem;

namespace {
std::string resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}
/// A synthetic split in `folder`, generated unless a previous run left one made with the same settings
/// (recorded in synthetic.json beside the manifest).
std::string generate_synthetic_split(const TrainingRecipe& recipe, const std::string& folder, int64_t count,
                                     uint64_t seed, const std::function<void(int64_t, int64_t)>& progress) {
  const std::string manifest = (fs::path(folder) / "manifest.jsonl").string();
  const std::string record = (fs::path(folder) / "synthetic.json").string();
  const nlohmann::json spec = {{"count", count}, {"seed", seed}, {"size", recipe.data.synthetic.size},
                               {"flame", recipe.data.flame}};
  if (fs::exists(manifest) && fs::exists(record) && io::read_json(record) == spec) return manifest;
  synth::SyntheticDatasetOptions options;
  options.count = count;
  options.seed = seed;
  options.photo.size = recipe.data.synthetic.size;
  options.flame = recipe.data.flame;
  fs::create_directories(fs::path(folder).parent_path());
  const std::string written = synth::write_synthetic_dataset(folder, options, progress);
  io::write_json(record, spec);
  return written;
}

}  // namespace

TrainingRecipe TrainingRecipe::from_json(nlohmann::json j, const std::string& base_dir, const std::string& where,
                                         const std::vector<std::string>& overrides) {
  io::apply_overrides(j, overrides);
  try {
    io::detail::reject_unknown_keys(j, {"network", "trainer", "data", "init", "backbone_weights"}, "TrainingRecipe");
  } catch (const ValueError& e) {
    throw ValueError(where + ": " + e.what());
  }
  PIXEL3DMM_CHECK_T(ValueError, j.contains("network"), where, ": a recipe needs a 'network' section");
  TrainingRecipe r;
  r.network = nn::NetworkConfig::from_json(j.at("network"), where + ": network");
  r.network.validate(where + ": network");
  if (j.contains("trainer")) r.trainer = io::parse_config<TrainerOptions>(j.at("trainer"), where + ": trainer");
  if (j.contains("data")) r.data = io::parse_config<DataSpec>(j.at("data"), where + ": data");
  r.trainer.validate();
  const auto string_field = [&](const char* key) {
    if (!j.contains(key)) return std::string();
    PIXEL3DMM_CHECK_T(ValueError, j.at(key).is_string(), where, ": '", key, "' must be a path string");
    return j.at(key).get<std::string>();
  };
  r.init = resolve(string_field("init"), base_dir);
  r.backbone_weights = resolve(string_field("backbone_weights"), base_dir);
  r.data.train = resolve(r.data.train, base_dir);
  r.data.val = resolve(r.data.val, base_dir);
  r.data.flame = resolve(r.data.flame, base_dir);
  r.data.synthetic.folder = resolve(r.data.synthetic.folder, base_dir);
  PIXEL3DMM_CHECK_T(ValueError, !r.data.train.empty() || r.data.synthetic.count > 0, where,
                    ": no training data: set data.train (a manifest) or data.synthetic.count");
  return r;
}

TrainingRecipe TrainingRecipe::read(const std::string& path, const std::vector<std::string>& overrides) {
  return from_json(io::read_json(path), fs::absolute(path).parent_path().string(), path, overrides);
}

nlohmann::json TrainingRecipe::to_json() const {
  nlohmann::json j;
  j["network"] = network.to_json();
  j["trainer"] = trainer;
  j["data"] = data;
  j["init"] = init;
  j["backbone_weights"] = backbone_weights;
  return j;
}

std::pair<SampleSource, SampleSource> open_recipe_data(
    const TrainingRecipe& recipe, const std::string& run_dir,
    const std::function<void(const std::string&, int64_t, int64_t)>& progress) {
  DatasetOptions options;
  options.flame = recipe.data.flame;
  std::string train = recipe.data.train, val = recipe.data.val;
  if (train.empty()) {
    const auto& syn = recipe.data.synthetic;
    const fs::path folder = syn.folder.empty() ? fs::path(run_dir) / "data" : fs::path(syn.folder);
    const auto stage = [&](const char* name) -> std::function<void(int64_t, int64_t)> {
      if (!progress) return {};
      return [&progress, name](int64_t done, int64_t total) { progress(name, done, total); };
    };
    train = generate_synthetic_split(recipe, (folder / "train").string(), syn.count, syn.seed, stage("train data"));
    if (val.empty() && syn.val_count > 0)
      val = generate_synthetic_split(recipe, (folder / "val").string(), syn.val_count,
                                     syn.seed + static_cast<uint64_t>(syn.count), stage("val data"));
  }
  SampleSource train_source = SampleSource::from(Dataset::open(train, options));
  SampleSource val_source;
  if (!val.empty()) val_source = SampleSource::from(Dataset::open(val, options));
  return {train_source, val_source};
}

nn::Pixel3DMMNet recipe_initial_network(const TrainingRecipe& recipe) {
  nn::Pixel3DMMNet net = Trainer::initial_network(recipe.network, recipe.trainer.seed);
  if (!recipe.init.empty()) {
    PIXEL3DMM_CHECK_T(FileNotFound, fs::exists(recipe.init), recipe.init, ": initial weights not found");
    nn::load_official_state_dict(net, io::read_safetensors(recipe.init).tensors, recipe.init);
  }
  if (!recipe.backbone_weights.empty()) nn::load_backbone_weights(net->backbone, recipe.backbone_weights);
  return net;
}

TrainingRun::TrainingRun(TrainingRecipe recipe, const std::string& run_dir, bool resume,
                         const std::function<void(const std::string&, int64_t, int64_t)>& progress)
    : TrainingRun(std::move(recipe), run_dir, resume, distributed::ProcessGroup::from_env(), progress) {}

TrainingRun::TrainingRun(TrainingRecipe recipe, const std::string& run_dir, bool resume,
                         distributed::ProcessGroup group,
                         const std::function<void(const std::string&, int64_t, int64_t)>& progress)
    : recipe_(std::move(recipe)) {
  PIXEL3DMM_CHECK_T(ValueError, resume || !latest_checkpoint(run_dir).has_value(), run_dir,
                    ": this run folder already has checkpoints; resume it (--resume) or choose another folder");
  // Files only from rank 0 (the others read what it wrote: the run folder must be shared when the recipe
  // generates its data there).
  group.run_on_rank0("preparing the run folder and its data", [&] {
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    PIXEL3DMM_CHECK_T(Error, fs::is_directory(run_dir), run_dir, ": cannot create the run folder");
    io::write_json((fs::path(run_dir) / "recipe.json").string(), recipe_.to_json());
    std::tie(train_, val_) = open_recipe_data(recipe_, run_dir, progress);
  });
  if (group.rank() != 0) std::tie(train_, val_) = open_recipe_data(recipe_, run_dir);
  trainer_ = std::make_unique<Trainer>(recipe_initial_network(recipe_), recipe_.trainer, run_dir, group);
  if (resume) trainer_->resume();
}

ValidationMetrics TrainingRun::train(const TrainCallbacks& callbacks) { return trainer_->train(train_, val_, callbacks); }

}  // namespace pixel3dmm::train
