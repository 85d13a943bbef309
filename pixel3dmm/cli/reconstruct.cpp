// `pixel3dmm reconstruct`: photos -> meshes (preprocess, predict, fit), one output folder per photo.
#include <chrono>
#include <cstdio>

#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/pipeline.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::cli {
namespace {

int run_reconstruct(const std::vector<std::string>& argv) {
  Args args("pixel3dmm reconstruct",
            "Reconstructs FLAME meshes from photos: finds the largest face, crops it, predicts UV and normal maps "
            "and fits FLAME and the camera. Writes <out>/<photo name>/ per photo (meshes, parameters, pictures, "
            "fit inputs, report.json) and prints a summary table.");
  args.positional("images", "photos or folders of photos", 1)
      .option("out", "output folder", "pixel3dmm-out")
      .flag("joint", "the photos show one person: fit one identity to all of them (image-set mode)")
      .flag("all-faces", "reconstruct every face of each photo (folders <photo>-face1, -face2, ... largest first), "
                         "not only the largest");
  declare_pipeline_options(args, true);
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  const auto images = collect_images(args.positionals());
  const std::string out = args.get("out");
  const auto options = pipeline_options(args);
  prepare_output_folder(out);
  std::printf("pixel3dmm reconstruct: %zu photo(s) -> %s\n", images.size(), out.c_str());
  const reconstruct::Reconstructor rec(options);
  const int steps = options.fit.camera.steps + options.fit.iters;
  std::vector<std::string> used;
  std::vector<ItemOutcome> outcomes;
  if (args.flag_set("joint") && args.flag_set("all-faces"))
    throw UsageError("--joint and --all-faces do not go together (a joint fit is one person)");
  if (args.flag_set("joint")) {
    std::vector<std::string> folders;
    for (const auto& img : images) folders.push_back(item_folder(out, img, used));
    const ItemOutcome o = run_item(std::to_string(images.size()) + " photos (joint)", out, [&] {
      const auto start = std::chrono::steady_clock::now();
      const auto recs = rec.reconstruct_set(images, fit_progress("fit", steps));
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
      for (size_t k = 0; k < recs.size(); ++k) {
        write_folder_atomically(folder + "-face" + std::to_string(k + 1),
                                [&](const std::string& dir) { rec.write(dir, recs[k]); });
        loss += recs[k].result.log.empty() ? 0.0 : recs[k].result.log.back().total / double(recs.size());
      }
      std::printf("  %zu face(s)\n", recs.size());
      return loss;
    });
  } else {
    outcomes = for_each_image(images, out, [&](const std::string& image, const std::string& folder) {
      const auto start = std::chrono::steady_clock::now();
      const auto r = rec.reconstruct(image, fit_progress("fit", steps));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      write_folder_atomically(folder, [&](const std::string& dir) { rec.write(dir, r, s); });
      return r.result.log.empty() ? 0.0 : r.result.log.back().total;
    });
  }
  return print_summary(outcomes);
}

}  // namespace

PIXEL3DMM_COMMAND("reconstruct", "photos -> FLAME meshes (preprocess, predict, fit)", run_reconstruct);

}  // namespace pixel3dmm::cli
