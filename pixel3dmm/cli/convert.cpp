// `pixel3dmm convert`: the official checkpoints and FLAME pickles -> pixel3dmm's files. Both are Python pickles,
// read by the package's restricted unpickler (no Lightning, OmegaConf or chumpy needed), so this command runs
// `python -m pixel3dmm.convert_checkpoint` / `pixel3dmm.convert_flame` with the arguments passed through.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "pixel3dmm/cli/args.h"
#include "pixel3dmm/cli/command.h"

namespace pixel3dmm::cli {
namespace {

namespace fs = std::filesystem;

/// PYTHONPATH for the child: the caller's, plus the build tree's python/ folder beside this program's bin/ (so a
/// build works without installing the package).
std::string python_path() {
  std::string path = std::getenv("PYTHONPATH") ? std::getenv("PYTHONPATH") : "";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path build_python = exe.parent_path().parent_path() / "python";
    if (fs::exists(build_python / "pixel3dmm" / "__init__.py", ec))
      path = build_python.string() + (path.empty() ? "" : ":" + path);
  }
  return path;
}

int run_convert(const std::vector<std::string>& argv) {
  const std::string usage =
      "usage: pixel3dmm convert checkpoint uv.ckpt [-o uv.safetensors] [--config uv.json]\n"
      "       pixel3dmm convert flame generic_model.pkl -o flame.npz [--landmarks ...] [--masks ...] ...\n\n"
      "Converts the official Pixel3DMM checkpoints (Lightning .ckpt) and FLAME pickles into the files pixel3dmm\n"
      "loads (docs/network.md, docs/flame.md). Runs the Python converters (python -m pixel3dmm.convert_checkpoint\n"
      "/ pixel3dmm.convert_flame) with Debian's /usr/bin/python3 ($PIXEL3DMM_PYTHON overrides); `pixel3dmm\n"
      "convert <kind> --help` lists a converter's options.\n";
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::cout << usage;
    return argv.empty() ? kUsage : kOk;
  }
  std::string module;
  if (argv[0] == "checkpoint") module = "pixel3dmm.convert_checkpoint";
  else if (argv[0] == "flame") module = "pixel3dmm.convert_flame";
  else throw UsageError("unknown kind '" + argv[0] + "' (expected checkpoint or flame)\n" + usage);
  const std::string python = std::getenv("PIXEL3DMM_PYTHON") ? std::getenv("PIXEL3DMM_PYTHON") : "/usr/bin/python3";
  std::vector<std::string> args = {python, "-m", module};
  args.insert(args.end(), argv.begin() + 1, argv.end());
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("convert: cannot start " + python);
  if (pid == 0) {
    const std::string pp = python_path();
    if (!pp.empty()) setenv("PYTHONPATH", pp.c_str(), 1);
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execv(python.c_str(), cargs.data());
    std::fprintf(stderr, "pixel3dmm convert: error: cannot run %s (set PIXEL3DMM_PYTHON)\n", python.c_str());
    _exit(kFailure);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return kFailure;
  // The converters exit 1 for a bad input file and 2 for a bad command line (argparse); keep our codes.
  const int code = WEXITSTATUS(status);
  return code == 0 ? kOk : code == 2 ? kUsage : kBadInput;
}

}  // namespace

PIXEL3DMM_COMMAND("convert", "official checkpoints / FLAME pickles -> pixel3dmm files (runs the Python converters)",
                  run_convert);

}  // namespace pixel3dmm::cli
