#pragma once
/// Training checkpoints: one folder per checkpoint, `<run>/checkpoints/step-0000100/`, holding
///   model.safetensors + model.json   the network (official names; loadable by nn::load_network / the predictor)
///   optimizer.safetensors            AdamW's moments under "<parameter>.exp_avg" / "<parameter>.exp_avg_sq"
///   trainer.json                     step, optimiser step counts, options and metrics so far
/// A checkpoint is written into a hidden folder and renamed into place when complete, so a process killed while
/// writing leaves the previous checkpoints intact and no half-written one that looks complete.

#include <torch/nn/modules/container/any.h>
#include <torch/optim/adamw.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pixel3dmm/nn/network.h"

namespace pixel3dmm::train {

/// "<run>/checkpoints/step-0000100".
std::string checkpoint_path(const std::string& run_dir, int64_t step);

/// The complete checkpoints of a run, oldest first (hidden partial folders are not listed).
std::vector<std::string> list_checkpoints(const std::string& run_dir);

/// The newest complete checkpoint of a run, if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

/// Writes a checkpoint of `net` and `optimizer` (its parameters must be net's, in any groups) with `state`
/// (a JSON object, stored as trainer.json) to `folder`, atomically; an existing folder of that name is replaced.
/// Environment variable PIXEL3DMM_CHECKPOINT_PAUSE_MS (fault-injection tests): pause that long with the files
/// written but the folder not yet renamed.
void save_checkpoint(const std::string& folder, const nn::Pixel3DMMNet& net, const torch::optim::AdamW& optimizer,
                     const nlohmann::json& state);

/// Reads a checkpoint into `net` (strict, as nn::load_network) and `optimizer` (its parameters must be net's; the
/// moments of every trainable parameter must be present with the right shapes) and returns its trainer.json.
/// FileNotFound / FormatError name the file and the offending tensor.
nlohmann::json load_checkpoint(const std::string& folder, nn::Pixel3DMMNet& net, torch::optim::AdamW& optimizer);

/// Keeps the newest `keep` checkpoints of a run and removes older ones (keep <= 0 keeps all).
void prune_checkpoints(const std::string& run_dir, int64_t keep);

}  // namespace pixel3dmm::train
