// The bytes of the demo networks' files, embedded at build time (see CMakeLists.txt). Plain C++ with no LibTorch
// include: this file is compiled without the precompiled header because of its own definitions.
#include "pixel3dmm/predict/detail/demo_model_data.h"

#include <cstring>

#define PIXEL3DMM_INCBIN(symbol, file)                                                                    \
  __asm__(".section .rodata\n.balign 64\n.global " #symbol "_begin\n.hidden " #symbol "_begin\n" #symbol \
          "_begin:\n.incbin \"" PIXEL3DMM_DEMO_MODEL_DIR "/" file "\"\n.global " #symbol "_end\n.hidden " #symbol \
          "_end\n" #symbol "_end:\n.previous\n");                                                        \
  extern "C" const char symbol##_begin[], symbol##_end[]

PIXEL3DMM_INCBIN(pixel3dmm_demo_uv_weights, "uv.safetensors");
PIXEL3DMM_INCBIN(pixel3dmm_demo_uv_config, "uv.json");
PIXEL3DMM_INCBIN(pixel3dmm_demo_normals_weights, "normals.safetensors");
PIXEL3DMM_INCBIN(pixel3dmm_demo_normals_config, "normals.json");

namespace pixel3dmm::predict::detail {

// The file hashes only make the compiler's input change with the files (ccache); referencing them keeps that so.
static_assert(PIXEL3DMM_DEMO_HASH_uv_safetensors + PIXEL3DMM_DEMO_HASH_uv_json + PIXEL3DMM_DEMO_HASH_normals_safetensors +
                      PIXEL3DMM_DEMO_HASH_normals_json !=
                  1,
              "");

DemoModelFiles demo_model_files(bool uv) {
  if (uv)
    return {{pixel3dmm_demo_uv_weights_begin,
             static_cast<size_t>(pixel3dmm_demo_uv_weights_end - pixel3dmm_demo_uv_weights_begin)},
            {pixel3dmm_demo_uv_config_begin,
             static_cast<size_t>(pixel3dmm_demo_uv_config_end - pixel3dmm_demo_uv_config_begin)}};
  return {{pixel3dmm_demo_normals_weights_begin,
           static_cast<size_t>(pixel3dmm_demo_normals_weights_end - pixel3dmm_demo_normals_weights_begin)},
          {pixel3dmm_demo_normals_config_begin,
           static_cast<size_t>(pixel3dmm_demo_normals_config_end - pixel3dmm_demo_normals_config_begin)}};
}

}  // namespace pixel3dmm::predict::detail
