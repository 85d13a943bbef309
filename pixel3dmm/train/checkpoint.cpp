#include "pixel3dmm/train/checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "step-";

/// The step of a checkpoint folder name, or -1 for anything else (hidden partial folders included).
int64_t step_of(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) return -1;
  const std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

/// Parameters of `net` by their module names, the names moments are stored under.
std::map<const void*, std::string> parameter_names(const nn::Pixel3DMMNet& net) {
  std::map<const void*, std::string> names;
  for (const auto& item : net->named_parameters()) names[item.value().unsafeGetTensorImpl()] = item.key();
  return names;
}

std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

}  // namespace

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%07lld", kPrefix, static_cast<long long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const int64_t step = step_of(e.path().filename().string());
    if (step >= 0 && fs::exists(e.path() / "trainer.json")) found.emplace_back(step, e.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

void save_checkpoint(const std::string& folder, const nn::Pixel3DMMNet& net, const torch::optim::AdamW& optimizer,
                     const nlohmann::json& state) {
  fs::create_directories(fs::path(folder).parent_path());
  write_folder_atomically(folder, [&](const std::string& tmp_folder) {
    const fs::path tmp(tmp_folder);
    fs::create_directories(tmp);
    nn::save_network(net, (tmp / "model.safetensors").string());

    const auto names = parameter_names(net);
    io::TensorMap moments;
    nlohmann::json steps = nlohmann::json::object();
    const auto& states = optimizer.state();
    for (const auto& group : optimizer.param_groups())
      for (const auto& p : group.params()) {
        const auto it = states.find(state_key(p));
        if (it == states.end()) continue;  // not stepped yet
        const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
        const std::string& name = names.at(p.unsafeGetTensorImpl());
        moments[name + ".exp_avg"] = s.exp_avg();
        moments[name + ".exp_avg_sq"] = s.exp_avg_sq();
        steps[name] = s.step();
      }
    io::write_safetensors((tmp / "optimizer.safetensors").string(), moments, {{"format", "pixel3dmm-adamw"}});
    nlohmann::json full = state;
    full["optimizer_steps"] = steps;
    if (const char* pause = std::getenv("PIXEL3DMM_CHECKPOINT_PAUSE_MS"))
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoll(pause)));
    io::write_json((tmp / "trainer.json").string(), full);  // last: its presence marks a complete checkpoint
  });
}

nlohmann::json load_checkpoint(const std::string& folder, nn::Pixel3DMMNet& net, torch::optim::AdamW& optimizer) {
  const fs::path dir(folder);
  const std::string trainer_json = (dir / "trainer.json").string();
  PIXEL3DMM_CHECK_T(FileNotFound, fs::exists(trainer_json), trainer_json,
                    ": not a complete checkpoint (trainer.json is missing)");
  nlohmann::json state = io::read_json(trainer_json);
  const std::string weights = (dir / "model.safetensors").string();
  PIXEL3DMM_CHECK_T(FileNotFound, fs::exists(weights), weights, ": checkpoint weights not found");
  nn::load_official_state_dict(net, io::read_safetensors(weights).tensors, weights);

  const std::string moments_path = (dir / "optimizer.safetensors").string();
  PIXEL3DMM_CHECK_T(FileNotFound, fs::exists(moments_path), moments_path, ": optimiser state not found");
  const auto moments = io::read_safetensors(moments_path).tensors;
  const nlohmann::json steps = state.value("optimizer_steps", nlohmann::json::object());
  const auto names = parameter_names(net);
  auto& states = optimizer.state();
  states.clear();
  std::vector<std::string> problems;
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params()) {
      const std::string& name = names.at(p.unsafeGetTensorImpl());
      if (!steps.contains(name)) continue;  // never stepped (e.g. a frozen parameter)
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(steps.at(name).get<int64_t>());
      for (const char* kind : {"exp_avg", "exp_avg_sq"}) {
        const std::string key = name + "." + kind;
        const auto it = moments.find(key);
        if (it == moments.end()) {
          problems.push_back("missing " + key);
          continue;
        }
        if (!it->second.sizes().equals(p.sizes())) {
          problems.push_back(key + ": expected " + shape_string(p.sizes()) + ", found " +
                             shape_string(it->second.sizes()));
          continue;
        }
        const auto value = it->second.to(p.options()).clone();
        if (std::string(kind) == "exp_avg")
          s->exp_avg(value);
        else
          s->exp_avg_sq(value);
      }
      states[state_key(p)] = std::move(s);
    }
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) msg += "\n  " + p;
    throw FormatError(moments_path + ": optimiser state does not match the network:" + msg);
  }
  return state;
}

void prune_checkpoints(const std::string& run_dir, int64_t keep) {
  if (keep <= 0) return;
  const auto all = list_checkpoints(run_dir);
  std::error_code ec;
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i], ec);
}

}  // namespace pixel3dmm::train
