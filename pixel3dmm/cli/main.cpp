// The `pixel3dmm` program: dispatches to the registered subcommands and maps exceptions to exit codes.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/core/version.h"

namespace pixel3dmm::cli {

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

Registrar::Registrar(std::string name, std::string summary,
                     std::function<int(const std::vector<std::string>&)> run) {
  auto& all = commands();
  all.push_back({std::move(name), std::move(summary), std::move(run)});
  std::sort(all.begin(), all.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
}

namespace {

void print_usage(std::ostream& out) {
  out << "usage: pixel3dmm <command> [options]\n\n"
         "Single-image 3D face reconstruction (Pixel3DMM) on the CPU.\n\ncommands:\n";
  for (const auto& c : commands()) out << "  " << c.name << std::string(16 - std::min<size_t>(15, c.name.size()), ' ')
                                       << c.summary << "\n";
  out << "\n`pixel3dmm <command> --help` describes a command. `pixel3dmm --version` prints the version.\n"
         "Exit codes: 0 ok, 1 failure, 2 bad command line, 3 bad input file or value, 4 no face found.\n";
}

}  // namespace
}  // namespace pixel3dmm::cli

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  using namespace pixel3dmm::cli;
  reexec_with_openmp_wait_default();
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? kUsage : kOk;
  }
  if (args[0] == "--version") {
    std::cout << "pixel3dmm " << PIXEL3DMM_VERSION_STRING << "\n";
    return kOk;
  }
  const auto& all = commands();
  const auto it = std::find_if(all.begin(), all.end(), [&](const Command& c) { return c.name == args[0]; });
  if (it == all.end()) {
    std::cerr << "pixel3dmm: unknown command '" << args[0] << "'\n\n";
    print_usage(std::cerr);
    return kUsage;
  }
  try {
    init_runtime();
    return it->run(std::vector<std::string>(args.begin() + 1, args.end()));
  } catch (const UsageError& e) {
    std::cerr << "pixel3dmm " << it->name << ": " << e.what() << "\n";
    return kUsage;
  } catch (const NoFaceFound& e) {
    std::cerr << "pixel3dmm " << it->name << ": error: " << e.what() << "\n";
    return kNoFace;
  } catch (const FileNotFound& e) {
    std::cerr << "pixel3dmm " << it->name << ": error: " << e.what() << "\n";
    return kBadInput;
  } catch (const ValueError& e) {
    std::cerr << "pixel3dmm " << it->name << ": error: " << e.what() << "\n";
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "pixel3dmm " << it->name << ": error: " << e.what() << "\n";
    return kFailure;
  }
}
