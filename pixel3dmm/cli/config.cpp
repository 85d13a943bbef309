// `pixel3dmm config <job>`: prints a job's default configuration as JSON (the content of configs/<job>.json).
#include <iostream>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/fit/fit_config.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/track/tracker.h"

namespace pixel3dmm::cli {
namespace {

int run_config(const std::vector<std::string>& argv) {
  Args args("pixel3dmm config", "Prints the default configuration of a job as JSON; --set shows overrides applied.");
  args.positional("JOB", "the job: fit or track", 1, 1).repeated("set", "override a field, e.g. --set iters=800");
  if (!args.parse(argv)) {
    std::cout << args.help();
    return kOk;
  }
  const std::string job = args.positionals()[0];
  io::json j;
  if (job == "fit") {
    j = fit::FitConfig{};
    io::apply_overrides(j, args.all("set"));
    j = j.get<fit::FitConfig>();  // validates the overrides
  } else if (job == "track") {
    j = track::TrackerOptions{};
    io::apply_overrides(j, args.all("set"));
    j = j.get<track::TrackerOptions>();
  } else {
    throw UsageError("unknown job '" + job + "' (known: fit, track)");
  }
  std::cout << j.dump(2) << "\n";
  return kOk;
}

}  // namespace

PIXEL3DMM_COMMAND("config", "print a job's default configuration (JSON)", run_config);

}  // namespace pixel3dmm::cli
