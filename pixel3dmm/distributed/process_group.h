#pragma once
/// A group of processes working on one job through PyTorch's own distributed engine, c10d: rendezvous through a
/// TCPStore hosted by rank 0, collectives through ProcessGroupGloo (CPU tensors) or, in a CUDA build with NCCL,
/// ProcessGroupNCCL. A world of one process is a no-op group that touches no network.
///
/// Failure handling: every rank keeps a heartbeat counter in the store (its own connection, its own thread) and, when
/// it stops on an error of its own, publishes the error there first (report_failure). When a collective fails or
/// times out, the survivor reads the store to name the rank that is gone (its heartbeat stopped, it published an
/// error, or the store itself vanished with rank 0) and throws PeerLost naming it: the run stops within the
/// timeout, never hangs.

#include <torch/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/distributed/environment.h"

namespace pixel3dmm::distributed {

/// Another rank of the run failed, died or stopped responding; the message names it.
class PeerLost : public Error {
 public:
  using Error::Error;
};

enum class ReduceOp { Sum, Max, Min };

class ProcessGroup {
 public:
  /// A world of one (rank 0 of 1): every collective returns at once.
  ProcessGroup();
  /// Joins the run `env` describes (a world of one: the no-op group). Blocks until every rank has joined or
  /// env.timeout_s passed (PeerLost naming how many ranks joined).
  static ProcessGroup create(const Environment& env);
  /// create(Environment::from_env()).
  static ProcessGroup from_env();

  int64_t rank() const;
  int64_t world_size() const;
  bool distributed() const { return world_size() > 1; }
  const Environment& environment() const;

  /// In-place reduction of every tensor over all ranks (same shapes and dtypes on every rank).
  void all_reduce(std::vector<torch::Tensor>& tensors, ReduceOp op = ReduceOp::Sum) const;
  /// Sum of `values` over all ranks (float64; convenient for metric sums).
  std::vector<double> all_reduce_sum(std::vector<double> values) const;
  /// In place: every tensor takes rank `root`'s values.
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0) const;
  /// Returns when every rank has reached it.
  void barrier() const;

  /// Runs `work` on rank 0 only while the others wait for it (however long it takes, as long as rank 0 is alive):
  /// e.g. generating a dataset every rank then reads. An exception on rank 0 is published and rethrown there; the
  /// others throw PeerLost naming it.
  void run_on_rank0(const std::string& what, const std::function<void()>& work) const;

  /// Publishes that this rank is stopping because of `what`, so the others' errors can say why. Never throws.
  void report_failure(const std::string& what) const noexcept;

  /// Asynchronous sum of one tensor (gradient buckets): start() returns a handle, wait() finishes it.
  class Pending {
   public:
    void wait();
   private:
    friend class ProcessGroup;
    std::function<void()> wait_;
  };
  Pending start_all_reduce(torch::Tensor tensor) const;

  /// Throws Error naming the first tensor (by `names`) whose values differ from rank 0's (bit for bit).
  void check_identical(const std::vector<torch::Tensor>& tensors, const std::vector<std::string>& names,
                       const std::string& what) const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// Gradient averaging for data parallelism, overlapped with the backward pass: parameters are grouped into
/// buckets (in reverse registration order, the order backward produces them) of about `bucket_bytes`; a hook on
/// each parameter copies its gradient into its bucket and, when the bucket is full, starts its all-reduce while
/// backward goes on. finish() waits for them and writes the averages (sum / world size) into the `.grad`s.
/// A parameter whose gradient arrives other than exactly once (unused, or used twice) makes that step fall back
/// to a plain all-reduce of the `.grad`s (correct, not overlapped). With a world of one it does nothing.
class GradientSync {
 public:
  GradientSync(ProcessGroup group, std::vector<torch::Tensor> params, int64_t bucket_bytes = 4 << 20);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  /// Before backward: clears the buckets.
  void prepare();
  /// After backward: every parameter's `.grad` holds the mean over all ranks.
  void finish();
  /// Buckets in use (figures for docs/benchmarks).
  int64_t buckets() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace pixel3dmm::distributed
