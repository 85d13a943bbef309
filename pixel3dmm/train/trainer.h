#pragma once
/// Training a Pixel3DMM network (one prediction type) as the official training does
/// (official-network.md section 4, src/pixel3dmm/lightning/p3dmm_system.py):
///  - loss: mean over all pixels of mask * |target - output| in the network's raw units, weighted 10 for UV and
///    0.1 for normals;
///  - AdamW, betas (0.9, 0.95), weight decay 0.05 except biases and LayerNorm parameters, head learning rate 4e-4,
///    backbone 1e-5 when it is fine-tuned (frozen by default);
///  - the official CosineWarmupScheduler: linear warm-up over `warmup_steps`, then a cosine to 0 at `steps`.
/// A run lives in a folder: config.json, log.csv (every `log_every` steps), val.csv, loss.png, checkpoints/ (see
/// checkpoint.h) and, at the end, model.safetensors + model.json. A resumed run continues exactly where its last
/// checkpoint stopped: the data order and augmentations depend only on (seed, step).
/// Over several processes (a distributed::ProcessGroup, docs/distributed.md) each rank trains on its share of every
/// global batch, gradients are averaged across ranks during backward, and only rank 0 writes files.

#include <array>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/optim/adamw.h>

#include "pixel3dmm/distributed/process_group.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/train/augment.h"
#include "pixel3dmm/train/data_loader.h"

namespace pixel3dmm::train {

struct TrainerOptions {
  int64_t steps = 1000;      ///< optimiser steps in all (the schedule's length)
  int64_t batch_size = 8;    ///< global batch (official: 8)
  double lr = 4e-4;          ///< head learning rate (official lr)
  double lr_backbone = 1e-5; ///< backbone learning rate when fine-tuned (official lr_backbone)
  bool finetune_backbone = false;  ///< official default: the DINO backbone stays frozen
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.05;
  int64_t warmup_steps = 200;
  double grad_clip = 0.0;    ///< clip the global gradient norm to this (0: off, as the official training)
  double loss_weight = 0.0;  ///< 0: the official weight of the prediction type (UV 10, normals 0.1)
  AugmentOptions augment;
  uint64_t seed = 0;         ///< data order, augmentation and (for a new network) the initial weights
  int64_t prefetch = 2;      ///< batches prepared ahead by background threads
  int64_t log_every = 10;    ///< a log.csv row and a progress line every so many steps
  int64_t val_every = 0;     ///< validation every so many steps (0: only at the end)
  int64_t val_samples = 0;   ///< validate on at most this many samples (0: all)
  int64_t checkpoint_every = 100;  ///< 0: only at the end
  int64_t keep_checkpoints = 2;    ///< newest checkpoints kept (0: all)

  /// Throws ValueError naming the field.
  void validate() const;
};
PIXEL3DMM_CONFIG(TrainerOptions, steps, batch_size, lr, lr_backbone, finetune_backbone, beta1, beta2, eps,
                 weight_decay, warmup_steps, grad_clip, loss_weight, augment, seed, prefetch, log_every, val_every,
                 val_samples, checkpoint_every, keep_checkpoints)

/// The official CosineWarmupScheduler's factor for the optimiser step with 0-based index `step`:
/// k = step + 1; k / warmup while k <= warmup, else (1 + cos(pi (k - warmup) / (steps - warmup))) / 2.
double learning_rate_factor(int64_t step, int64_t warmup_steps, int64_t steps);

/// The official training loss: mean over all pixels and channels of mask * |target - output|.
/// output, target: B x C x T x T; mask: B x 1 x T x T.
torch::Tensor masked_l1(const torch::Tensor& output, const torch::Tensor& target, const torch::Tensor& mask);

/// Validation figures over the masked pixels of a set of samples.
struct ValidationMetrics {
  int64_t step = 0;
  int64_t samples = 0;
  double loss = 0;              ///< the weighted training loss
  double uv_error = NAN;        ///< mean |(u, 1 - v) predicted - true| in UV units ([0, 1] texture coordinates)
  double uv_error_px = NAN;     ///< the same error as a distance in output pixels: |J^-1 delta| with J the true
                                ///< UV map's per-pixel Jacobian (capped at 1/8 of the side; mean)
  double normal_error_deg = NAN;  ///< mean angle between predicted and true normals, degrees
};

/// Sums behind ValidationMetrics for one batch, in the network's raw units (output, target: B x 2 x T x T,
/// mask: B x 1 x T x T): {sum of |delta uv| over the mask, mask pixels, sum of the pixel distances, pixels with a
/// usable Jacobian}.
std::array<double, 4> uv_error_sums(const torch::Tensor& output, const torch::Tensor& target,
                                    const torch::Tensor& mask);
/// {sum of angles (degrees) over the mask, mask pixels, 0, 0} for B x 3 x T x T raw normals.
std::array<double, 4> normal_error_sums(const torch::Tensor& output, const torch::Tensor& target,
                                        const torch::Tensor& mask);

/// One row of log.csv.
struct TrainLogEntry {
  int64_t step = 0;    ///< optimiser steps done
  int64_t epoch = 0;
  double lr = 0;       ///< head learning rate of the last step
  double loss = 0;     ///< mean loss over the steps since the previous row
  double grad_norm = 0;  ///< global gradient norm of the last step (before clipping)
  double images_per_second = 0;
  double elapsed_s = 0;  ///< wall time of this run (resumed runs restart the clock)
};

/// Progress callbacks (return nothing; throw to stop).
struct TrainCallbacks {
  std::function<void(const TrainLogEntry&)> on_log;
  std::function<void(const ValidationMetrics&)> on_validation;
  std::function<void(const std::string&)> on_checkpoint;
};

class Trainer {
 public:
  /// A trainer for `net` writing to `run_dir` (created). The parameters of a frozen backbone get
  /// requires_grad false. Throws ValueError for invalid options. With a `group` of several processes every rank
  /// constructs its Trainer the same way and calls train / validate together; options.batch_size is the global
  /// batch (a multiple of the world size), and only rank 0 writes config.json, logs, plots and checkpoints.
  Trainer(nn::Pixel3DMMNet net, TrainerOptions options, std::string run_dir, distributed::ProcessGroup group = {});

  /// A new network of `config` with weights drawn from options.seed.
  static nn::Pixel3DMMNet initial_network(const nn::NetworkConfig& config, uint64_t seed);

  /// Loads the newest complete checkpoint of the run folder (network, optimiser state, step); false when there
  /// is none. FormatError when it does not match the network.
  bool resume();
  /// Loads a specific checkpoint folder.
  void resume_from(const std::string& checkpoint);

  /// Trains from the current step to options.steps. `val` may have size 0 (no validation). Writes logs,
  /// checkpoints and, at the end, the final model and a last validation. Returns the last validation metrics
  /// (step = options.steps; samples 0 without validation data). Distributed: starts from rank 0's weights,
  /// optimiser state and step (so only rank 0 needs the checkpoint it resumed from); the callbacks run on rank 0
  /// only; an error on one rank is published so the others stop with distributed::PeerLost naming it.
  ValidationMetrics train(const SampleSource& train, const SampleSource& val, const TrainCallbacks& callbacks = {});

  /// Metrics of the current network on `val` (no augmentation; at most options.val_samples samples). Distributed:
  /// a collective; each rank evaluates every world_size-th sample and the sums are all-reduced.
  ValidationMetrics validate(const SampleSource& val);

  /// Writes a checkpoint of the current state now (rank 0 only; every rank returns its path).
  std::string save_checkpoint();

  int64_t step() const { return step_; }
  nn::Pixel3DMMNet network() const { return net_; }
  const TrainerOptions& options() const { return options_; }
  const std::string& run_dir() const { return run_dir_; }
  const distributed::ProcessGroup& process_group() const { return group_; }

 private:
  double loss_weight() const;
  void set_learning_rates(int64_t step);
  void append_log(const TrainLogEntry& e);
  void append_validation(const ValidationMetrics& m);
  void write_plot() const;
  void truncate_logs();
  ValidationMetrics train_loop(const SampleSource& train, const SampleSource& val, const TrainCallbacks& callbacks);
  /// Every rank takes rank 0's step, weights and optimiser state.
  void broadcast_state();
  /// Parameters and optimiser moments, bit for bit the same on every rank (debug builds, PIXEL3DMM_DIST_CHECK=1).
  void check_replicas() const;
  bool writer() const { return group_.rank() == 0; }

  nn::Pixel3DMMNet net_;
  TrainerOptions options_;
  std::string run_dir_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<double> base_lrs_;  ///< per parameter group
  int64_t step_ = 0;
  distributed::ProcessGroup group_;
};

}  // namespace pixel3dmm::train
