#pragma once
/// Options and helpers the photo commands share (`reconstruct`, `predict`, `fit`): the model files, the
/// preprocessing and fit settings, the list of input images, the output folder and the per-image summary.

#include <memory>
#include <string>
#include <vector>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/core/atomic_file.h"  // write_folder_atomically
#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/predict/predictor.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::cli {

/// --flame, --uv-weights, --normal-weights, --precision (networks: only when `networks`), --landmark-model, --masks,
/// --segmentation, --max-side, --config, --set.
void declare_pipeline_options(Args& args, bool networks);
/// The options those flags describe (fit config: defaults, then --config, then each --set).
reconstruct::ReconstructorOptions pipeline_options(const Args& args);

/// --landmark-model, --faceboxes, --pipnet, --masks, --segmentation, --face-parser, --retinaface: the preprocessing
/// of the photo commands (declared by declare_pipeline_options) and of `track` (`sequence`: --segmentation names a
/// folder of per-frame label files, the parser's label maps go to OUT/seg_og/).
void declare_preprocess_options(Args& args, bool sequence);
/// The preprocessing those flags describe (crop "official" with --faceboxes). UsageError for --pipnet without
/// --faceboxes or --retinaface without --face-parser. Prints where the parser's keypoints come from.
preprocess::PreprocessOptions preprocess_options(const Args& args);

/// Two lines: which face box / crop rule and which landmark model the preprocessing runs.
void print_preprocessing(const preprocess::PreprocessOptions& options);

/// --mica, --scrfd, --identity, --identity-prior: the fit's identity prior (`reconstruct`, `fit`).
void declare_identity_options(Args& args);
/// The prior those flags choose (empty options: none). UsageError for --mica with --identity, --scrfd without
/// --mica or an unknown --identity-prior.
identity::IdentityPriorOptions identity_options(const Args& args);
/// "identity prior: <what>" or a line saying that none was used and how to give one.
void print_identity_prior(const identity::IdentityPrior& prior);

/// --uv-weights, --normal-weights, --demo-networks and --precision, for commands that can also run on the embedded demo
/// networks (`eval`, `track`); `purpose` ends the help text of --uv-weights.
void declare_network_choice(Args& args, const std::string& purpose);
/// The predictor those options choose: the demo networks, the converted pair, or nullptr when none was given and
/// `required` is false. UsageError for --demo-networks beside weights, one weight file without the other, or
/// nothing when `required`.
std::unique_ptr<predict::Predictor> chosen_predictor(const Args& args, bool required);

/// Input paths -> image files: a folder contributes its images (by extension, sorted); a file is taken as it is.
/// Throws FileNotFound naming a path that does not exist, ValueError for an empty result.
std::vector<std::string> collect_images(const std::vector<std::string>& inputs);

/// Creates `folder` and checks that a file can be written in it; throws FileNotFound (exit code 3) naming it.
void prepare_output_folder(const std::string& folder);

/// A progress callback for a fit of `total` steps, redrawing a progress bar labelled `label`.
fit::FitCallback fit_progress(const std::string& label, int total);

/// One row of the summary table printed at the end of a batch.
struct ItemOutcome {
  std::string input, output, status = "ok";
  int exit_code = 0;
  bool skipped = false;  ///< its output was already complete (a resumed batch)
  double seconds = 0.0, final_loss = 0.0;
};
/// Prints the table and returns the batch's exit code: 0 if every item succeeded, else the first failure's code.
int print_summary(const std::vector<ItemOutcome>& items);

/// Runs `work` for one item, turning pixel3dmm's exceptions into a status line and an exit code (as main does),
/// so one bad image does not stop a batch.
ItemOutcome run_item(const std::string& input, const std::string& output, const std::function<double()>& work);

/// Which items of a batch this process takes: with a world of several processes (launched by torchrun / srun, see
/// distributed::Environment) rank r of n takes images i with i % n == r, with no communication between them; with
/// `skip_complete`, items whose output folder exists are skipped (folders are written whole with
/// write_folder_atomically, so one that exists is complete): a restarted batch finishes without redoing work.
struct BatchShare {
  int64_t rank = 0, world_size = 1;
  bool skip_complete = false;
};

/// For each image of this process's share: prints "[i/n] image", runs `work(image, folder)` (folder =
/// item_folder(out, image), named over the whole list so every rank agrees) through run_item and collects the
/// outcomes. `complete(folder)`: whether an item's outputs are all there (default: the folder exists).
std::vector<ItemOutcome> for_each_image(
    const std::vector<std::string>& images, const std::string& out,
    const std::function<double(const std::string& image, const std::string& folder)>& work,
    const BatchShare& share = {}, const std::function<bool(const std::string& folder)>& complete = {});

/// The output folder of an input image: <out>/<file stem> (a numeric suffix when two inputs share a stem).
std::string item_folder(const std::string& out, const std::string& input, std::vector<std::string>& used);

}  // namespace pixel3dmm::cli
