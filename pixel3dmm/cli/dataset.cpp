// `pixel3dmm dataset`: training datasets (docs/datasets.md). `check` loads every sample of a manifest and lists
// every problem; `synth` writes the synthetic dataset.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/map_png.h"
#include "pixel3dmm/train/dataset.h"
#include "pixel3dmm/synth/synthetic_dataset.h"

namespace pixel3dmm::cli {
namespace {

namespace fs = std::filesystem;

const char* kUsageText =
    "usage: pixel3dmm dataset check MANIFEST [--flame F]\n"
    "       pixel3dmm dataset synth OUT [--count N] [--size S] [--seed K] [--flame F] [--png-targets] [--meshes]\n"
    "\n"
    "  check  loads every sample of a manifest (docs/datasets.md) and prints every problem as\n"
    "         `line N (id): file: reason`; exit code 0 when clean, 3 when any sample is bad\n"
    "  synth  writes a synthetic dataset (photo-like renders of random FLAME heads with exact targets)\n";

int run_check(const std::vector<std::string>& argv) {
  Args args("pixel3dmm dataset check",
            "Loads every sample of a dataset manifest (reading images and targets, rendering mesh samples) and "
            "prints every problem found: missing or unreadable files, size mismatches, NaN / Inf, values out of "
            "range, empty masks. Exit code 0 when the dataset is clean, 3 when any problem was found.");
  args.positional("manifest", "the manifest (.jsonl)", 1, 1)
      .option("flame", "FLAME model file mesh samples are rendered with; default: the synthetic FLAME-layout model");
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  const std::string manifest = args.positionals()[0];
  train::DatasetOptions options;
  options.flame = args.get("flame");
  std::unique_ptr<Progress> progress;
  const auto problems = train::check_dataset(manifest, options, [&](int64_t done, int64_t total) {
    if (!progress) progress = std::make_unique<Progress>("check", total);
    progress->update(done);
  });
  std::set<int64_t> bad;
  for (const auto& p : problems) {
    if (p.index < 0) {
      std::printf("%s%s: %s\n", p.line > 0 ? ("line " + std::to_string(p.line) + ": ").c_str() : "", p.file.c_str(),
                  p.reason.c_str());
    } else {
      std::printf("line %lld (%s): %s: %s\n", static_cast<long long>(p.line), p.id.c_str(), p.file.c_str(),
                  p.reason.c_str());
      bad.insert(p.index);
    }
  }
  if (!problems.empty() && problems.front().index < 0) {
    std::printf("%s: the manifest does not parse\n", manifest.c_str());
    return kBadInput;
  }
  const int64_t total = train::Dataset::open(manifest, options).size();
  if (problems.empty()) {
    std::printf("%s: %lld samples, no problems\n", manifest.c_str(), static_cast<long long>(total));
    return kOk;
  }
  std::printf("%s: %lld problem(s) in %lld of %lld samples\n", manifest.c_str(),
              static_cast<long long>(problems.size()), static_cast<long long>(bad.size()),
              static_cast<long long>(total));
  return kBadInput;
}

/// Rows of image | uv (u, 1 - v, 0) | normals (n + 1) / 2 | mask, 2 px gaps: a picture of what a sample holds.
void write_preview(const std::string& path, const train::Dataset& d, int64_t rows) {
  rows = std::min(rows, d.size());
  std::vector<torch::Tensor> lines;
  for (int64_t i = 0; i < rows; ++i) {
    const auto s = d.get(i);
    const auto gap = torch::ones({3, s.image.size(1), 2});
    lines.push_back(torch::cat({s.image, gap, io::uv_png_image(s.uv) * s.mask, gap,
                                io::normals_png_image(s.normals) * s.mask, gap, s.mask.expand({3, -1, -1})},
                               2));
    if (i + 1 < rows) lines.push_back(torch::ones({3, 2, lines.back().size(2)}));
  }
  io::write_image(path, torch::cat(lines, 1));
}

int run_synth(const std::vector<std::string>& argv) {
  Args args("pixel3dmm dataset synth",
            "Writes a synthetic training dataset: photo-like renders of random heads of the synthetic FLAME-layout "
            "model (or a user's FLAME) with their exact UV, normal and mask targets, the FLAME parameters and "
            "cameras, and manifest.jsonl. The folder appears whole or not at all (an existing one is replaced).");
  args.positional("out", "output folder", 1, 1)
      .option("count", "number of samples", "100")
      .option("size", "image size (pixels)", "256")
      .option("seed", "dataset seed (sample i is the same for a seed, whatever the count)", "0")
      .option("flame", "FLAME model file; default: the synthetic FLAME-layout model")
      .flag("png-targets", "write uv / normals as 8-bit PNGs in the official encodings (default: exact float .npy)")
      .flag("meshes", "also write meshes/<id>.npy and manifest_meshes.jsonl (the same samples as mesh samples)")
      .option("preview", "also write a PNG grid of the first samples (rows: image | uv | normals | mask)")
      .option("preview-rows", "samples in the preview grid", "4");
  if (!args.parse(argv)) {
    std::printf("%s", args.help().c_str());
    return kOk;
  }
  synth::SyntheticDatasetOptions o;
  o.count = args.get_int("count", 1);
  o.photo.size = args.get_int("size", 16);
  o.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  o.flame = args.get("flame");
  o.png_targets = args.flag_set("png-targets");
  o.meshes = args.flag_set("meshes");
  const std::string out = args.positionals()[0];
  Progress progress("synth", o.count);
  const auto start = std::chrono::steady_clock::now();
  const std::string manifest =
      synth::write_synthetic_dataset(out, o, [&](int64_t done, int64_t) { progress.update(done); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (args.has("preview")) {
    const std::string preview = args.get("preview");
    write_preview(preview, train::Dataset::open(manifest), args.get_int("preview-rows", 1));
    std::printf("wrote the preview %s\n", preview.c_str());
  }
  std::printf("wrote %lld synthetic samples (%lld x %lld, %s targets) to %s in %.1f s (%.1f samples/s)\n",
              static_cast<long long>(o.count), static_cast<long long>(o.photo.size),
              static_cast<long long>(o.photo.size), o.png_targets ? "PNG" : "float .npy", manifest.c_str(), seconds,
              double(o.count) / std::max(seconds, 1e-9));
  return kOk;
}

int run_dataset(const std::vector<std::string>& argv) {
  if (argv.empty()) throw UsageError(std::string("missing subcommand (check or synth)\n\n") + kUsageText);
  const std::string sub = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (sub == "check") return run_check(rest);
  if (sub == "synth") return run_synth(rest);
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::printf("%s", kUsageText);
    return kOk;
  }
  throw UsageError("unknown subcommand '" + sub + "' (expected check or synth)\n\n" + kUsageText);
}

}  // namespace

PIXEL3DMM_COMMAND("dataset", "training datasets: check a manifest, write the synthetic dataset", run_dataset);

}  // namespace pixel3dmm::cli
