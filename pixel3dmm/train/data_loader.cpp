#include "pixel3dmm/train/data_loader.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::train {

SampleSource SampleSource::from(const Dataset& dataset) {
  return {dataset.size(), [dataset](int64_t i) { return dataset.get(i); }};
}

SampleSource SampleSource::from(std::vector<TrainingSample> samples) {
  auto held = std::make_shared<const std::vector<TrainingSample>>(std::move(samples));
  return {static_cast<int64_t>(held->size()), [held](int64_t i) { return held->at(static_cast<size_t>(i)); }};
}

DataLoader::DataLoader(SampleSource source, nn::NetworkConfig network, DataLoaderOptions options,
                       std::optional<AugmentOptions> augment)
    : source_(std::move(source)), network_(std::move(network)), options_(options), augment_(augment) {
  PIXEL3DMM_CHECK_T(ValueError, options_.batch_size > 0, "DataLoader: batch_size must be positive, found ",
                    options_.batch_size);
  PIXEL3DMM_CHECK_T(ValueError, options_.world_size > 0 && options_.rank >= 0 && options_.rank < options_.world_size,
                    "DataLoader: rank ", options_.rank, " outside a world of ", options_.world_size);
  PIXEL3DMM_CHECK_T(ValueError, options_.batch_size % options_.world_size == 0, "DataLoader: the global batch of ",
                    options_.batch_size, " does not split evenly over ", options_.world_size, " processes");
  PIXEL3DMM_CHECK_T(ValueError, source_.size >= options_.batch_size, "DataLoader: ", source_.size,
                    " sample(s) are fewer than one batch of ", options_.batch_size);
}

DataLoader::~DataLoader() { drain(); }

int64_t DataLoader::steps_per_epoch() const { return source_.size / options_.batch_size; }

std::shared_ptr<const std::vector<int64_t>> DataLoader::order(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(order_mutex_);
  if (order_ && order_epoch_ == epoch) return order_;
  auto order = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(source_.size));
  std::iota(order->begin(), order->end(), 0);
  if (options_.shuffle) {
    // Fisher-Yates with our own draws: std::shuffle's algorithm is implementation-defined.
    std::mt19937_64 rng(mix_seed(options_.seed, 0x5eedULL, static_cast<uint64_t>(epoch)));
    for (size_t i = order->size() - 1; i > 0; --i) std::swap((*order)[i], (*order)[rng() % (i + 1)]);
  }
  order_epoch_ = epoch;
  order_ = std::move(order);
  return order_;
}

std::vector<int64_t> DataLoader::indices(int64_t step) const {
  const int64_t spe = steps_per_epoch(), epoch = step / spe, first = (step % spe) * options_.batch_size;
  const auto order = this->order(epoch);
  std::vector<int64_t> out;
  for (int64_t p = options_.rank; p < options_.batch_size; p += options_.world_size)
    out.push_back((*order)[static_cast<size_t>(first + p)]);
  return out;
}

TrainingBatch DataLoader::batch(int64_t step) const {
  const int64_t spe = steps_per_epoch(), epoch = step / spe;
  const auto idx = indices(step);
  std::vector<TrainingBatch> items;
  items.reserve(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    const int64_t position = (step % spe) * options_.batch_size + options_.rank + static_cast<int64_t>(k) *
                                                                                       options_.world_size;
    const uint64_t seed = mix_seed(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(position));
    items.push_back(prepare_sample(source_.get(idx[k]), network_, augment_ ? &*augment_ : nullptr, seed));
  }
  return collate(items);
}

void DataLoader::drain() {
  for (auto& f : pending_)
    if (f.valid()) f.wait();
  pending_.clear();
}

void DataLoader::seek(int64_t step) {
  drain();
  next_step_ = step;
}

TrainingBatch DataLoader::next() {
  if (options_.prefetch <= 0) return batch(next_step_++);
  const auto top_up = [this] {  // keep `prefetch` batches in flight, for steps next_step_, next_step_ + 1, ...
    for (int64_t s = next_step_ + static_cast<int64_t>(pending_.size()); s < next_step_ + options_.prefetch; ++s)
      pending_.push_back(std::async(std::launch::async, [this, s] { return batch(s); }));
  };
  top_up();
  auto f = std::move(pending_.front());
  pending_.pop_front();
  ++next_step_;
  top_up();
  return f.get();
}

}  // namespace pixel3dmm::train
