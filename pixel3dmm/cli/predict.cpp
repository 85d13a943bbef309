// `pixel3dmm predict`: photos -> the fit inputs (crop, landmarks, pupils, masks, UV and normal maps), no fitting.
#include <cstdio>

#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/pipeline.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::cli {
namespace {

int run_predict(const std::vector<std::string>& argv) {
  Args args("pixel3dmm predict",
            "Preprocesses photos and predicts their UV and normal maps without fitting. Writes <out>/<photo name>/ "
            "per photo: crop.png, preprocess.json/png, masks.safetensors, predictions.safetensors and the official "
            "uv_map.png / normals.png. `pixel3dmm fit` fits them later.");
  args.positional("images", "photos or folders of photos", 1).option("out", "output folder", "pixel3dmm-out");
  declare_pipeline_options(args, true);
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  const auto options = pipeline_options(args);  // usage errors before file errors
  const auto images = collect_images(args.positionals());
  const std::string out = args.get("out");
  prepare_output_folder(out);
  const reconstruct::Reconstructor rec(options);
  print_preprocessing(options.preprocess);
  const auto outcomes = for_each_image(images, out, [&](const std::string& image, const std::string& folder) {
    const auto input = rec.preprocess(image);
    const auto predictions = rec.predict(input);
    write_folder_atomically(folder,
                            [&](const std::string& dir) { reconstruct::write_fit_inputs(dir, input, predictions); });
    return 0.0;
  });
  return print_summary(outcomes);
}

}  // namespace

PIXEL3DMM_COMMAND("predict", "photos -> crops, landmarks, masks and UV/normal maps (no fit)", run_predict);

}  // namespace pixel3dmm::cli
