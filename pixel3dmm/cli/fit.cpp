// `pixel3dmm fit`: fits FLAME to saved predictions (folders written by `pixel3dmm predict`).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/pipeline.h"
#include "pixel3dmm/fit/outputs.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::cli {
namespace {

int run_fit(const std::vector<std::string>& argv) {
  Args args("pixel3dmm fit",
            "Fits FLAME and the camera to saved predictions: each input is a folder written by `pixel3dmm "
            "predict`. Writes the fit outputs into <out>/<folder name>/ (default: beside the inputs, in place).");
  args.positional("folders", "fit-input folders", 1)
      .option("out", "output folder (default: write into each input folder)")
      .flag("joint", "the folders show one person: fit one identity to all of them (image-set mode)");
  declare_pipeline_options(args, false);
  declare_identity_options(args);
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  const auto options = pipeline_options(args);
  const fit::Fitter fitter(flame::Flame(reconstruct::load_flame_or_synthetic(options.flame), flame::FlameOptions()),
                           options.fit);
  const identity::IdentityPrior prior(identity_options(args));
  print_identity_prior(prior);
  // The prior of one saved crop (fit_inputs.json's landmarks give MICA's keypoints).
  auto target_of = [&](const std::string& folder, bool with_identity) {
    const auto fi = reconstruct::read_fit_inputs(folder);
    auto t = reconstruct::make_target(fi.input, fi.predictions);
    if (with_identity) t.identity = prior.code(fi.input.crop, fi.input.landmarks, folder);
    return t;
  };
  if (args.has("out")) prepare_output_folder(args.get("out"));
  const int steps = options.fit.camera.steps + options.fit.iters;
  auto output_of = [&](const std::string& in) {
    return args.has("out") ? (std::filesystem::path(args.get("out")) /
                              std::filesystem::path(in).lexically_normal().filename())
                                 .string()
                           : in;
  };
  auto write = [&](const std::string& folder, const fit::FitResult& r, const fit::FitTarget& t, int64_t index) {
    std::filesystem::create_directories(folder);
    fit::write_fit_outputs(folder, fitter, r, t, index);
    io::write_json((std::filesystem::path(folder) / "fit_report.json").string(),
                   {{"iterations", r.iterations}, {"fit_seconds", r.seconds},
                    {"final_loss", r.log.empty() ? 0.0 : r.log.back().total}, {"index_in_fit", index},
                    {"identity_prior", r.identity_prior.defined() ? prior.describe() : "none"}});
  };
  std::vector<ItemOutcome> outcomes;
  const auto& inputs = args.positionals();
  if (args.flag_set("joint")) {
    outcomes.push_back(run_item(std::to_string(inputs.size()) + " folders (joint)", "", [&] {
      std::vector<fit::FitTarget> targets;
      // The prior from every max(1, N / 10)-th folder, as Reconstructor::reconstruct_set and the official code.
      const auto frames = identity::identity_frames(static_cast<int64_t>(inputs.size()));
      for (size_t i = 0; i < inputs.size(); ++i)
        targets.push_back(target_of(inputs[i], std::find(frames.begin(), frames.end(), int64_t(i)) != frames.end()));
      const auto r = fitter.fit(targets, fit_progress("fit", steps));
      for (size_t i = 0; i < inputs.size(); ++i) write(output_of(inputs[i]), r, targets[i], static_cast<int64_t>(i));
      return r.log.empty() ? 0.0 : r.log.back().total;
    }));
  } else {
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::printf("[%zu/%zu] %s\n", i + 1, inputs.size(), inputs[i].c_str());
      std::fflush(stdout);
      outcomes.push_back(run_item(inputs[i], output_of(inputs[i]), [&] {
        const auto target = target_of(inputs[i], true);
        const auto r = fitter.fit(target, fit_progress("fit", steps));
        write(output_of(inputs[i]), r, target, 0);
        return r.log.empty() ? 0.0 : r.log.back().total;
      }));
    }
  }
  return print_summary(outcomes);
}

}  // namespace

PIXEL3DMM_COMMAND("fit", "fits FLAME to saved predictions (folders from `pixel3dmm predict`)", run_fit);

}  // namespace pixel3dmm::cli
