// `pixel3dmm reconstruct`: photos -> meshes (preprocess, predict, fit), one output folder per photo.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/pipeline.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/distributed/environment.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::cli {
namespace {

int run_reconstruct(const std::vector<std::string>& argv) {
  Args args("pixel3dmm reconstruct",
            "Reconstructs FLAME meshes from photos: finds the largest face, crops it, predicts UV and normal maps "
            "and fits FLAME and the camera. Writes <out>/<photo name>/ per photo (meshes, parameters, pictures, "
            "fit inputs, report.json) and prints a summary table. Launched by torchrun or srun (RANK, WORLD_SIZE), "
            "each process takes every WORLD_SIZE-th photo; with --resume a restarted batch skips the photos whose "
            "output folder is complete (docs/distributed.md).");
  args.positional("images", "photos or folders of photos", 1)
      .option("out", "output folder", "pixel3dmm-out")
      .flag("joint",
            "the photos show one person: fit one identity to all of them (image-set mode; with "
            "--faceboxes, photos of one size share one static crop by the official sequence rule)")
      .flag("all-faces",
            "reconstruct every face of each photo (folders <photo>-face1, -face2, ... largest first), "
            "not only the largest")
      .flag("resume", "skip photos whose output is already complete (restarting an interrupted batch)");
  declare_pipeline_options(args, true);
  declare_identity_options(args);
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  auto options = pipeline_options(args);  // usage errors before file errors
  options.identity = identity_options(args);
  const auto images = collect_images(args.positionals());
  const std::string out = args.get("out");
  const auto env = distributed::Environment::from_env();
  const BatchShare share{env.rank, env.world_size, args.flag_set("resume")};
  prepare_output_folder(out);
  if (env.distributed())
    std::printf("pixel3dmm reconstruct: %s takes %zu of %zu photo(s) -> %s\n", env.describe().c_str(),
                distributed::shard(static_cast<int64_t>(images.size()), env.rank, env.world_size).size(),
                images.size(), out.c_str());
  else
    std::printf("pixel3dmm reconstruct: %zu photo(s) -> %s\n", images.size(), out.c_str());
  const reconstruct::Reconstructor rec(options);
  print_preprocessing(options.preprocess);
  print_identity_prior(rec.identity_prior());
  const int steps = options.fit.camera.steps + options.fit.iters;
  std::vector<std::string> used;
  std::vector<ItemOutcome> outcomes;
  if (args.flag_set("joint") && args.flag_set("all-faces"))
    throw UsageError("--joint and --all-faces do not go together (a joint fit is one person)");
  if (args.flag_set("joint") && env.rank != 0) {
    std::printf("a joint fit is one job: rank 0 does it\n");
    return kOk;
  }
  if (args.flag_set("joint")) {
    std::vector<std::string> folders;
    for (const auto& img : images) folders.push_back(item_folder(out, img, used));
    const ItemOutcome o = run_item(std::to_string(images.size()) + " photos (joint)", out, [&] {
      const auto start = std::chrono::steady_clock::now();
      const auto recs = rec.reconstruct_set(images, fit_progress("fit", steps));
      const auto& first = recs.front().input;
      if (first.crop_method == "official-sequence")
        std::printf("crop: one static crop for all %zu photos, the official sequence rule (x %lld, y %lld, %lld px)\n",
                    recs.size(), static_cast<long long>(first.crop_box.x0), static_cast<long long>(first.crop_box.y0),
                    static_cast<long long>(first.crop_box.side));
      else if (first.crop_method == "official" && recs.size() > 1)
        std::printf(
            "crop: the photos differ in size, so each has its own official crop (the sequence rule assumes "
            "one frame size)\n");
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      for (size_t i = 0; i < recs.size(); ++i)
        write_folder_atomically(folders[i], [&](const std::string& dir) { rec.write(dir, recs[i], s); });
      return recs.front().result.log.empty() ? 0.0 : recs.front().result.log.back().total;
    });
    outcomes.push_back(o);
  } else if (args.flag_set("all-faces")) {
    outcomes = for_each_image(images, out, [&](const std::string& image, const std::string& folder) {
      const auto recs = rec.reconstruct_all(image, fit_progress("fit", steps));
      if (recs.empty()) throw NoFaceFound("no face found in " + image);
      double loss = 0.0;
      // The largest face last: once <photo>-face1 exists, every face of the photo is written (--resume).
      for (size_t k = recs.size(); k-- > 0;) {
        write_folder_atomically(folder + "-face" + std::to_string(k + 1),
                                [&](const std::string& dir) { rec.write(dir, recs[k]); });
        loss += recs[k].result.log.empty() ? 0.0 : recs[k].result.log.back().total / double(recs.size());
      }
      std::printf("  %zu face(s)\n", recs.size());
      return loss;
    }, share, [](const std::string& folder) { return std::filesystem::is_directory(folder + "-face1"); });
  } else {
    outcomes = for_each_image(images, out, [&](const std::string& image, const std::string& folder) {
      const auto start = std::chrono::steady_clock::now();
      const auto r = rec.reconstruct(image, fit_progress("fit", steps));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      write_folder_atomically(folder, [&](const std::string& dir) { rec.write(dir, r, s); });
      return r.result.log.empty() ? 0.0 : r.result.log.back().total;
    }, share);
  }
  return print_summary(outcomes);
}

}  // namespace

PIXEL3DMM_COMMAND("reconstruct", "photos -> FLAME meshes (preprocess, predict, fit)", run_reconstruct);

}  // namespace pixel3dmm::cli
