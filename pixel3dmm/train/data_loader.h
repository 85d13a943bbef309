#pragma once
/// Batches for training, deterministic by (seed, step): the sample order of each epoch is a permutation drawn
/// from (seed, epoch) and each sample's augmentation from (seed, epoch, position), so batch k is the same whether
/// the run started at step 0 or resumed at step k, and whatever the number of loading threads. Batches are
/// prepared ahead of use by background threads.

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/train/augment.h"
#include "pixel3dmm/train/dataset.h"

namespace pixel3dmm::train {

/// Where samples come from: `size` samples, `get(i)` loads sample i (called from several threads at once).
struct SampleSource {
  int64_t size = 0;
  std::function<TrainingSample(int64_t)> get;

  /// The samples of a Dataset.
  static SampleSource from(const Dataset& dataset);
  /// Samples held in memory.
  static SampleSource from(std::vector<TrainingSample> samples);
};

struct DataLoaderOptions {
  int64_t batch_size = 8;
  uint64_t seed = 0;
  /// Shuffle every epoch (training); false walks the samples in order (validation).
  bool shuffle = true;
  /// Batches prepared ahead, each by its own thread (0: prepare on the caller's thread).
  int64_t prefetch = 2;
  /// This process's share of every batch when training over several processes (the distributed sampler): the
  /// global batch of each step is drawn from the (seed, epoch) permutation as in a single process and position p
  /// of it goes to rank p % world_size, so over an epoch the ranks' samples never overlap, none is lost that a
  /// single process would see, every rank runs the same number of steps, and each sample keeps the augmentation
  /// of its global position: the union of the ranks' batches is the single-process batch.
  int64_t rank = 0, world_size = 1;
};

class DataLoader {
 public:
  /// `augment` null = no augmentation. Throws ValueError when the source has fewer samples than one global batch.
  DataLoader(SampleSource source, nn::NetworkConfig network, DataLoaderOptions options,
             std::optional<AugmentOptions> augment);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Full global batches per epoch (the remainder of an epoch is dropped).
  int64_t steps_per_epoch() const;
  /// The batch of global step `step` (this rank's part), computed on the caller's thread.
  TrainingBatch batch(int64_t step) const;
  /// The sample indices of global step `step` (this rank's part) in batch order.
  std::vector<int64_t> indices(int64_t step) const;

  /// Sequential access with prefetching: the next call to next() returns batch(step).
  void seek(int64_t step);
  TrainingBatch next();

  const DataLoaderOptions& options() const { return options_; }

 private:
  SampleSource source_;
  nn::NetworkConfig network_;
  DataLoaderOptions options_;
  std::optional<AugmentOptions> augment_;
  int64_t next_step_ = 0;
  std::deque<std::future<TrainingBatch>> pending_;
  /// The permutation of the epoch last asked for (prefetch threads share it; drawn once per epoch, not per batch).
  mutable std::mutex order_mutex_;
  mutable int64_t order_epoch_ = -1;
  mutable std::shared_ptr<const std::vector<int64_t>> order_;
  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) const;
  void drain();
};

}  // namespace pixel3dmm::train
