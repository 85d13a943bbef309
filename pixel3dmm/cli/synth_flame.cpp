// `pixel3dmm synth-flame`: writes the synthetic FLAME-layout model (tests, demos and benchmarks use it in place of
// the licence-gated FLAME files).
#include <cstdio>
#include <iostream>
#include <string>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/synth/synthetic_flame.h"

namespace pixel3dmm::cli {
namespace {

int run_synth_flame(const std::vector<std::string>& argv) {
  Args args("pixel3dmm synth-flame",
            "Writes a deterministic synthetic head model with FLAME's exact array layout (docs/flame.md) to .npz "
            "or .safetensors.");
  args.option("out", "output file (.npz or .safetensors)")
      .option("seed", "seed of the identity/expression bases", "0")
      .option("vertices", "vertex count (5023 = FLAME's size)", "5023")
      .option("shape", "identity components", "300")
      .option("expr", "expression components", "100")
      .flag("float32", "store floats as float32 (default float64)");
  if (!args.parse(argv)) {
    std::cout << args.help();
    return kOk;
  }
  if (!args.has("out")) throw UsageError("--out is required");
  const int64_t seed = args.get_int("seed", 0);
  const auto options = synth::SyntheticFlameOptions()
                           .vertices(args.get_int("vertices"))
                           .n_shape(args.get_int("shape"))
                           .n_expr(args.get_int("expr"))
                           .seed(static_cast<uint64_t>(seed));
  const flame::FlameModel model = synth::synthetic_flame(options);
  model.save(args.get("out"), args.flag_set("float32") ? torch::kFloat : torch::kDouble);
  std::printf("wrote %s: %s\n", args.get("out").c_str(), flame::describe(model).c_str());
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("synth-flame", "write the synthetic FLAME-layout model (.npz/.safetensors)", run_synth_flame);

}  // namespace pixel3dmm::cli
