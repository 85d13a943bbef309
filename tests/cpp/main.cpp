// Catch2 runner: LibTorch threads as the runtime sets them (PIXEL3DMM_NUM_THREADS, else all cores).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "pixel3dmm/core/runtime.h"

int main(int argc, char* argv[]) {
  pixel3dmm::init_runtime();
  return Catch::Session().run(argc, argv);
}
