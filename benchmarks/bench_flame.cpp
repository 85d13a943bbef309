// Flame forward and forward+backward on the 5023-vertex synthetic model (FLAME's size, 300 identity + 100
// expression components, 6D rotations, eyelids, both LBS passes), batch 1 and 16, 1 and 2 threads.
#include <cstdio>

#include "bench_util.h"
#include "pixel3dmm/flame/flame.h"
#include "pixel3dmm/synth/synthetic_flame.h"

int main() {
  using namespace pixel3dmm;
  using namespace pixel3dmm::flame;
  bench::print_header("FLAME forward / forward+backward (synthetic 5023 vertices, 300+100 components, float32)");
  const FlameModel model = synth::synthetic_flame();
  Flame flame(model);
  std::printf("%-7s %-8s %-10s %14s %14s\n", "batch", "threads", "pass", "forward ms", "fwd+bwd ms");
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t B : {1, 16}) {
      for (bool noneck : {true, false}) {
        Flame f = noneck ? flame : Flame(model, FlameOptions().compute_noneck(false));
        torch::manual_seed(0);
        FlameParams p = f->neutral_params(B);
        p.shape = torch::randn({B, 300}) * 0.5;
        p.expression = torch::randn({B, 100}) * 0.5;
        p.neck_pose = p.neck_pose + 0.1 * torch::randn({B, 6});
        p.jaw_pose = p.jaw_pose + 0.1 * torch::randn({B, 6});
        p.eyelids = torch::rand({B, 2});
        const double fwd = bench::median_ms([&] {
          torch::NoGradGuard no_grad;
          (void)f->forward(p);
        });
        FlameParams g = p;
        for (auto* t : {&g.shape, &g.expression, &g.global_rotation, &g.neck_pose, &g.jaw_pose, &g.eye_pose, &g.eyelids,
                        &g.translation})
          *t = t->detach().requires_grad_(true);
        const double both = bench::median_ms([&] {
          const auto out = f->forward(g);
          const auto loss = out.vertices.square().sum() + out.landmarks.square().sum() +
                            (noneck ? out.vertices_noneck.square().sum() : torch::zeros({}));
          loss.backward();
        });
        std::printf("%-7lld %-8d %-10s %14.3f %14.3f\n", static_cast<long long>(B), threads,
                    noneck ? "both" : "full only", fwd, both);
      }
    }
  }
  return 0;
}
