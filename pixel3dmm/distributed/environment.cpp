#include "pixel3dmm/distributed/environment.h"

#include <cerrno>
#include <cstdlib>
#include <string>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::distributed {
namespace {

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

/// The leading integer of `name` (Slurm writes SLURM_NTASKS_PER_NODE as e.g. "2(x3)"); `fallback` when unset.
int64_t integer(const char* name, int64_t fallback, bool allow_suffix = false) {
  const char* v = get(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  PIXEL3DMM_CHECK_T(ValueError, end != v && errno == 0 && (allow_suffix || *end == '\0'),
                    "distributed: environment variable ", name, "='", v, "' is not an integer");
  return x;
}

}  // namespace

Environment Environment::from_env() {
  Environment e;
  const bool torchrun = get("WORLD_SIZE") != nullptr || get("RANK") != nullptr;
  if (torchrun) {
    e.world_size = integer("WORLD_SIZE", 1);
    e.rank = integer("RANK", 0);
    e.local_rank = integer("LOCAL_RANK", e.rank);
    e.local_world_size = integer("LOCAL_WORLD_SIZE", e.world_size);
  } else if (get("SLURM_NTASKS") != nullptr && get("SLURM_PROCID") != nullptr) {
    e.world_size = integer("SLURM_NTASKS", 1);
    e.rank = integer("SLURM_PROCID", 0);
    e.local_rank = integer("SLURM_LOCALID", 0);
    e.local_world_size = integer("SLURM_NTASKS_PER_NODE", e.world_size, /*allow_suffix=*/true);
  }
  const char* source = torchrun ? "RANK / WORLD_SIZE" : "SLURM_PROCID / SLURM_NTASKS";
  PIXEL3DMM_CHECK_T(ValueError, e.world_size >= 1, "distributed: ", source, " give a world size of ", e.world_size,
                    " (at least 1)");
  PIXEL3DMM_CHECK_T(ValueError, e.rank >= 0 && e.rank < e.world_size, "distributed: ", source, " give rank ", e.rank,
                    " outside a world of ", e.world_size);
  PIXEL3DMM_CHECK_T(ValueError, e.local_world_size >= 1 && e.local_rank >= 0 && e.local_rank < e.local_world_size,
                    "distributed: local rank ", e.local_rank, " outside a local world of ", e.local_world_size);
  if (const char* t = get("PIXEL3DMM_DIST_TIMEOUT")) {
    char* end = nullptr;
    e.timeout_s = std::strtod(t, &end);
    PIXEL3DMM_CHECK_T(ValueError, end != t && *end == '\0' && e.timeout_s > 0,
                      "distributed: PIXEL3DMM_DIST_TIMEOUT='", t, "' must be a positive number of seconds");
  }
  if (const char* b = get("PIXEL3DMM_DIST_BACKEND")) e.backend = b;
  PIXEL3DMM_CHECK_T(ValueError, e.backend == "gloo" || e.backend == "nccl", "distributed: PIXEL3DMM_DIST_BACKEND='",
                    e.backend, "' must be gloo or nccl");
  if (const char* addr = get("MASTER_ADDR")) e.master_addr = addr;
  e.master_port = integer("MASTER_PORT", e.master_port);
  PIXEL3DMM_CHECK_T(ValueError, e.master_port > 0 && e.master_port < 65536, "distributed: MASTER_PORT=",
                    e.master_port, " is not a TCP port");
  return e;
}

std::string Environment::describe() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (local " +
         std::to_string(local_rank) + " of " + std::to_string(local_world_size) + ")";
}

std::vector<int64_t> shard(int64_t n, int64_t rank, int64_t world_size) {
  PIXEL3DMM_CHECK_T(ValueError, world_size >= 1 && rank >= 0 && rank < world_size, "shard: rank ", rank,
                    " outside a world of ", world_size);
  std::vector<int64_t> out;
  for (int64_t i = rank; i < n; i += world_size) out.push_back(i);
  return out;
}

}  // namespace pixel3dmm::distributed
