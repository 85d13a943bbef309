// `pixel3dmm train RECIPE`: trains a prediction head (and optionally its backbone) from a recipe
// (training/recipes/*.json, see pixel3dmm/train/recipe.h), with progress lines, validation, checkpoints and
// exact resume.
#include <cmath>
#include <cstdio>
#include <memory>
#include <filesystem>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/train/recipe.h"

namespace pixel3dmm::cli {
namespace {

std::string metrics_line(const train::ValidationMetrics& m) {
  char buf[200];
  if (std::isfinite(m.uv_error))
    std::snprintf(buf, sizeof buf, "val loss %.4g, UV error %.4f (%.2f px)", m.loss, m.uv_error, m.uv_error_px);
  else
    std::snprintf(buf, sizeof buf, "val loss %.4g, normal error %.2f deg", m.loss, m.normal_error_deg);
  return buf;
}

int run_train(const std::vector<std::string>& argv) {
  Args args("pixel3dmm train",
            "Trains a Pixel3DMM network from a recipe (training/recipes/demo-uv.json is the demo model's). Writes "
            "<out>/log.csv, val.csv, loss.png, checkpoints/step-N/ and, at the end, model.safetensors + "
            "model.json (usable with `pixel3dmm predict --uv-weights`). An interrupted run continues exactly "
            "with --resume. Over several processes, launch it with torchrun or srun (RANK, WORLD_SIZE, MASTER_ADDR, "
            "MASTER_PORT, ...; PIXEL3DMM_DIST_TIMEOUT seconds, default 60): trainer.batch_size is the global "
            "batch, only rank 0 prints and writes (docs/distributed.md).");
  args.positional("recipe", "recipe JSON file", 1, 1)
      .option("out", "run folder", "pixel3dmm-train")
      .flag("resume", "continue the run in --out from its newest checkpoint")
      .repeated("set", "override a recipe field, e.g. --set trainer.steps=200 or --set data.synthetic.count=500");
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  const std::string out = args.get("out");
  const auto recipe = train::TrainingRecipe::read(args.positionals()[0], args.all("set"));
  const auto& t = recipe.trainer;
  const auto env = distributed::Environment::from_env();
  if (env.rank == 0) {
    std::string procs;
    if (env.distributed()) procs = " x " + std::to_string(env.world_size) + " processes";
    std::printf("pixel3dmm train: %s network (%s, %lld px), %lld steps of batch %lld, %d threads%s -> %s/\n",
                nn::to_string(recipe.network.prediction_type).c_str(), recipe.network.backbone_name.c_str(),
                static_cast<long long>(recipe.network.image_size), static_cast<long long>(t.steps),
                static_cast<long long>(t.batch_size), runtime_info().num_threads, procs.c_str(), out.c_str());
    std::fflush(stdout);
  }

  std::unique_ptr<Progress> data_progress;
  std::string data_stage;
  const auto on_data = [&](const std::string& stage, int64_t done, int64_t total) {
    if (stage != data_stage) {
      data_progress = std::make_unique<Progress>(stage, total);
      data_stage = stage;
    }
    data_progress->update(done);
  };
  train::TrainCallbacks cb;
  cb.on_log = [&](const train::TrainLogEntry& e) {
    const double eta = e.images_per_second > 0
                           ? static_cast<double>((t.steps - e.step) * t.batch_size) / e.images_per_second
                           : 0.0;
    std::printf("step %6lld/%lld  epoch %3lld  loss %.5g  lr %.3g  |g| %.3g  %.1f img/s  eta %.0f s\n",
                static_cast<long long>(e.step), static_cast<long long>(t.steps), static_cast<long long>(e.epoch),
                e.loss, e.lr, e.grad_norm, e.images_per_second, eta);
    std::fflush(stdout);
  };
  cb.on_validation = [&](const train::ValidationMetrics& m) {
    std::printf("validation at step %lld (%lld samples): %s\n", static_cast<long long>(m.step),
                static_cast<long long>(m.samples), metrics_line(m).c_str());
    std::fflush(stdout);
  };
  const bool resume = args.flag_set("resume");
  train::TrainingRun run(recipe, out, resume, distributed::ProcessGroup::create(env), on_data);
  if (env.rank != 0) {
    run.train();
    return kOk;
  }
  if (run.trainer().step() > 0)
    std::printf("resuming at step %lld\n", static_cast<long long>(run.trainer().step()));
  const auto final_metrics = run.train(cb);
  std::printf("done: %s/model.safetensors", out.c_str());
  if (final_metrics.samples > 0) std::printf("; %s", metrics_line(final_metrics).c_str());
  std::printf("\n");
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("train", "train a UV or normal network from a recipe", run_train);

}  // namespace pixel3dmm::cli
