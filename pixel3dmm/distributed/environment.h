#pragma once
/// Where this process stands in a multi-process run, read from the environment `torchrun` (and
/// `torch.distributed.launch`) sets: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
/// under Slurm's `srun` without torchrun, SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and SLURM_NTASKS_PER_NODE
/// stand in for the first four (MASTER_ADDR / MASTER_PORT must still be exported, see docs/distributed.md).
/// Nothing set = a world of one process, which needs no network at all.

#include <cstdint>
#include <string>
#include <vector>

namespace pixel3dmm::distributed {

struct Environment {
  int64_t rank = 0;              ///< this process, 0 .. world_size - 1 (rank 0 hosts the rendezvous store)
  int64_t world_size = 1;        ///< processes in the run, over all machines
  int64_t local_rank = 0;        ///< this process on its machine
  int64_t local_world_size = 1;  ///< processes on this machine
  std::string master_addr;  ///< rank 0's address (the TCPStore server); needed by ProcessGroup::create only
  int64_t master_port = 29500;
  /// How long a collective or the rendezvous may wait for the other ranks before the run stops with an error
  /// naming the rank that is missing (seconds; PIXEL3DMM_DIST_TIMEOUT, default 60).
  double timeout_s = 60.0;
  /// "gloo" (CPU tensors; always built) or "nccl" (CUDA tensors; only in builds against a CUDA LibTorch with NCCL).
  /// PIXEL3DMM_DIST_BACKEND, default gloo.
  std::string backend = "gloo";

  /// The environment of this process. Throws ValueError naming the variable when one is malformed or
  /// inconsistent (RANK >= WORLD_SIZE, a MASTER_PORT that is no port, ...).
  static Environment from_env();

  bool distributed() const { return world_size > 1; }
  /// "rank 1 of 4 (local 1 of 2)".
  std::string describe() const;
};

/// Items 0 .. n-1 that `rank` of `world_size` takes when work is split without coordination: i with
/// i % world_size == rank, in increasing order. Every item goes to exactly one rank; shares differ by at most one.
std::vector<int64_t> shard(int64_t n, int64_t rank, int64_t world_size);

}  // namespace pixel3dmm::distributed
