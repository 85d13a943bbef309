// Rasteriser, interpolation and antialiasing on a 10,000-triangle sphere (FLAME has 9,976) filling about half of
// the image under the official camera, at 256 x 256 and 512 x 512, with 1 and 2 threads.
// Target (issue 4): rasterise + interpolate, forward + backward, 512 x 512, 2 threads: under 10 ms.
#include <cstdio>

#include "bench_util.h"
#include "pixel3dmm/render/antialias.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/mesh_renderer.h"
#include "pixel3dmm/render/primitives.h"
#include "pixel3dmm/render/rasterize.h"

int main() {
  using namespace pixel3dmm;
  using namespace pixel3dmm::render;
  bench::print_header("render: rasterize / interpolate / antialias / MeshRenderer (float32, 10k triangles)");
  // Projected radius f r / d with f = 3.90625 S, d = 1 m: 0.102 m gives 0.4 S, i.e. pi 0.16 S^2 = half the image.
  const TriangleMesh mesh = uv_sphere(51, 100, 0.102);
  const int64_t V = mesh.vertices.size(0);
  const auto verts = mesh.vertices.unsqueeze(0);
  const auto topology = edge_topology(mesh.faces, V);
  MeshRenderer renderer(mesh.faces, mesh.uvs, mesh.uv_faces, V);
  std::printf("mesh: %lld vertices, %lld triangles\n\n", static_cast<long long>(V),
              static_cast<long long>(mesh.faces.size(0)));

  std::printf("%-9s %-3s %8s %8s %8s %9s %9s %8s %8s %10s\n", "size", "thr", "raster", "interp", "interp",
              "r+i f+b", "Mpix/s", "aa", "aa", "renderer");
  std::printf("%-9s %-3s %8s %8s %8s %9s %9s %8s %8s %10s\n", "", "", "fwd ms", "fwd ms", "bwd ms", "ms",
              "r+i f+b", "fwd ms", "bwd ms", "f+b ms");
  for (int64_t S : {256, 512}) {
    const Camera camera = Camera::official(S);
    const auto pos = camera.to_clip(verts).detach();
    const auto attr = torch::rand({1, V, 3});
    const auto grad_out = torch::rand({1, S, S, 3});
    double coverage = 0;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      const auto p = pos.clone().requires_grad_(true);
      const auto a = attr.clone().requires_grad_(true);
      RasterOutput r = rasterize(p, mesh.faces, S, S);
      coverage = r.coverage().to(torch::kFloat).mean().item<double>();
      const double raster_ms = bench::median_ms([&] { rasterize(p, mesh.faces, S, S); });
      const double interp_ms = bench::median_ms([&] { interpolate(a, r); });
      const auto out = interpolate(a, r);
      // Backward alone: the op's gradients to the attributes and the clip positions for a given output gradient.
      const double interp_bwd_ms =
          bench::median_ms([&] { torch::autograd::grad({out}, {a, p}, {grad_out}, /*retain_graph=*/true); });
      const double total_ms = bench::median_ms([&] {
        const RasterOutput rr = rasterize(p, mesh.faces, S, S);
        torch::autograd::grad({interpolate(a, rr)}, {a, p}, {grad_out});
      });
      const auto color = out.detach().requires_grad_(true);
      const double aa_ms = bench::median_ms([&] { antialias(color, r, topology); });
      const auto aa_out = antialias(color, r, topology);
      const double aa_bwd_ms = bench::median_ms(
          [&] { torch::autograd::grad({aa_out}, {color, p}, {grad_out}, /*retain_graph=*/true); });
      const auto vg = verts.clone().requires_grad_(true);
      const double render_ms = bench::median_ms([&] {
        const RenderOutput o = renderer.render(vg, camera);
        (o.uv.sum() + o.normals.sum() + o.mask.sum() + o.depth.sum()).backward();
      });
      std::printf("%-9s %-3d %8.2f %8.2f %8.2f %9.2f %9.1f %8.2f %8.2f %10.2f\n",
                  (std::to_string(S) + "x" + std::to_string(S)).c_str(), threads, raster_ms, interp_ms, interp_bwd_ms,
                  total_ms, S * S / total_ms / 1e3, aa_ms, aa_bwd_ms, render_ms);
    }
    std::printf("  (%lldx%lld: the sphere covers %.1f%% of the pixels)\n", static_cast<long long>(S),
                static_cast<long long>(S), 100 * coverage);
  }
  std::printf(
      "\nraster = rasterize; interp = interpolate of a 3-channel attribute (bwd: to attributes and clip positions);\n"
      "r+i f+b = rasterize + interpolate forward + backward (the issue's target), Mpix/s = its megapixels per second;\n"
      "aa = antialias of 3 channels (bwd: to colours and clip positions);\n"
      "renderer = MeshRenderer::render (UV, normals, depth, antialiased mask) forward + backward to the vertices.\n");
  return 0;
}
