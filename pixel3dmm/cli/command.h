#pragma once
/// The subcommands of the `pixel3dmm` program. Each lives in its own `cli/<name>.cpp` and registers itself with
/// PIXEL3DMM_COMMAND, so adding a command is adding a file.

#include <functional>
#include <string>
#include <vector>

namespace pixel3dmm::cli {

/// Exit codes scripts can rely on.
enum ExitCode : int {
  kOk = 0,
  kFailure = 1,     ///< the work itself failed (runtime error)
  kUsage = 2,       ///< bad command line
  kBadInput = 3,    ///< a missing, unreadable or malformed input file or value
  kNoFace = 4,      ///< no face found in an input image
};

struct Command {
  std::string name;
  std::string summary;  ///< one line for `pixel3dmm --help`
  std::function<int(const std::vector<std::string>& args)> run;
};

/// All registered commands, sorted by name.
std::vector<Command>& commands();

struct Registrar {
  Registrar(std::string name, std::string summary, std::function<int(const std::vector<std::string>&)> run);
};

}  // namespace pixel3dmm::cli

#define PIXEL3DMM_CLI_CONCAT2(a, b) a##b
#define PIXEL3DMM_CLI_CONCAT(a, b) PIXEL3DMM_CLI_CONCAT2(a, b)
/// Registers `fn(const std::vector<std::string>& args) -> int` as `pixel3dmm <name>`.
#define PIXEL3DMM_COMMAND(name, summary, fn) \
  static const ::pixel3dmm::cli::Registrar PIXEL3DMM_CLI_CONCAT(pixel3dmm_command_, __LINE__)(name, summary, fn)
