// The Pixel3DMM network's forward pass at 512 x 512, batch 1: backbone, head and total milliseconds for ViT-S/16
// and ViT-B/16 with 2 threads, beside the Python reference (the official architecture in torch.nn, same weights,
// same threads, run by benchmarks/bench_nn_reference.py), and the ViT-B backbone's GFLOP/s against the GEMM rate.
//
//   bench_nn [--threads N] [--budget SECONDS] [--no-python] [--bf16]
// Environment: PIXEL3DMM_PYTHON (default /usr/bin/python3), PIXEL3DMM_SOURCE_DIR (to find the reference script).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "pixel3dmm/nn/network.h"

#ifndef PIXEL3DMM_SOURCE_DIR
#define PIXEL3DMM_SOURCE_DIR "."
#endif

namespace {

using namespace pixel3dmm;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

struct Timing {
  double backbone = 0, head = 0, total = 0;
};

nlohmann::json run_python(const std::string& weights, int threads, double budget, const std::string& output) {
  const std::string script = env_or("PIXEL3DMM_SOURCE_DIR", PIXEL3DMM_SOURCE_DIR) + "/benchmarks/bench_nn_reference.py";
  // The reference runs with the malloc thresholds this process set (keep_freed_memory_for_reuse), like for like.
  const bool user_tunables = env_or("GLIBC_TUNABLES", "").find("malloc") != std::string::npos;
  const std::string cmd = (user_tunables ? std::string() : "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864:"
                                                           "glibc.malloc.trim_threshold=268435456 ") +
                          env_or("PIXEL3DMM_PYTHON", "/usr/bin/python3") + " '" + script + "' '" + weights +
                          "' --threads " + std::to_string(threads) + " --budget " + std::to_string(budget) +
                          " --output '" + output + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) return {};
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe.get())) out += buf;
  const auto pos = out.rfind('{');
  if (pos == std::string::npos) return {};
  try {
    return nlohmann::json::parse(out.substr(pos));
  } catch (...) {
    return {};
  }
}

/// Median milliseconds of backbone, head and total, measured in rounds (one of each per round) so that a slow
/// stretch of the machine falls on all three alike instead of on whichever was timed first.
template <class B, class H, class T>
Timing interleaved_medians(B backbone, H head, T total, double budget_s, int min_rounds = 5) {
  backbone(), head(), total();  // warm-up
  std::vector<double> b, h, t;
  auto time_ms = [](auto& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<int>(b.size()) < min_rounds ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < budget_s) {
    b.push_back(time_ms(backbone));
    h.push_back(time_ms(head));
    t.push_back(time_ms(total));
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  return {median(b), median(h), median(t)};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  double budget = 2.0;
  bool python = true, bf16 = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    if (a == "--budget" && i + 1 < argc) budget = std::atof(argv[++i]);
    if (a == "--no-python") python = false;
    if (a == "--bf16") bf16 = true;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  bench::print_header("Pixel3DMM network forward, 512 x 512, batch 1");
  set_num_threads(threads);
  const double gemm512 = measure_gemm_gflops(512), gemm1024 = measure_gemm_gflops(1024);
  std::printf("threads %d; SGEMM %.1f GFLOP/s (n=512), %.1f GFLOP/s (n=1024)\n\n", threads, gemm512, gemm1024);
  std::printf("%-10s %-8s %12s %12s %12s %16s\n", "backbone", "side", "backbone ms", "head ms", "total ms",
              "max|C++ - Py|");

  const auto dir = std::filesystem::temp_directory_path() / ("pixel3dmm-bench-nn-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  torch::NoGradGuard no_grad;
  for (const char* name : {"vit_small_patch16_224.dino", "vit_base_patch16_224.dino"}) {
    torch::manual_seed(0);
    auto cfg = nn::NetworkConfig::official(nn::PredictionType::UV, name);
    nn::Pixel3DMMNet net(cfg);
    for (auto& item : net->named_parameters()) {  // trained-like magnitudes
      auto& p = item.value();
      if (p.dim() > 1)
        p.copy_(torch::randn(p.sizes()) / std::sqrt(double(p[0].numel())));
      else
        p.copy_((item.key().find("norm") != std::string::npos && item.key().find("weight") != std::string::npos ? 1.0 : 0.0) +
                0.02 * torch::randn(p.sizes()));
    }
    net->eval();
    const std::string weights = (dir / (std::string(name) + ".safetensors")).string();
    nn::save_network(net, weights);

    // the same input as the reference script: torch.rand with generator seed 0
    auto x = torch::rand({1, 3, 512, 512}, torch::make_generator<at::CPUGeneratorImpl>(0));
    Timing c;
    auto feats = net->features(x);
    c = interleaved_medians([&] { net->features(x); }, [&] { net->head->forward(feats); }, [&] { net->forward(x); },
                            3 * budget);
    const auto out = net->forward(x);
    const char* label = std::string(name).find("small") != std::string::npos ? "ViT-S/16" : "ViT-B/16";
    std::printf("%-10s %-8s %12.1f %12.1f %12.1f\n", label, "C++", c.backbone, c.head, c.total);
    if (python) {
      const std::string ref_out = (dir / (std::string(name) + ".out")).string();
      const auto r = run_python(weights, threads, budget, ref_out);
      if (r.is_object()) {
        const double pb = r["backbone_ms"], ph = r["head_ms"], pt = r["total_ms"];
        double diff = -1;
        std::ifstream f(ref_out, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (bytes.size() == size_t(out.numel()) * sizeof(float)) {
          auto py = torch::from_blob(bytes.data(), out.sizes(), torch::kFloat).clone();
          diff = (py - out).abs().max().item<double>();
        }
        std::printf("%-10s %-8s %12.1f %12.1f %12.1f %16.2e\n", label, "Python", pb, ph, pt, diff);
        std::printf("%-10s %-8s %11.2fx %11.2fx %11.2fx\n", label, "Py/C++", pb / c.backbone, ph / c.head,
                    pt / c.total);
      } else {
        std::printf("%-10s %-8s (reference run failed; set PIXEL3DMM_SOURCE_DIR / PIXEL3DMM_PYTHON)\n", label,
                    "Python");
      }
    }
    if (label[4] == 'B') {
      const double gflop = nn::vit_forward_flops(cfg.backbone, 32, 32) / 1e9;
      const double rate = gflop / (c.backbone / 1e3);
      std::printf("\nViT-B/16 backbone: %.1f GFLOP per forward -> %.1f GFLOP/s = %.0f%% of SGEMM n=512, %.0f%% of "
                  "n=1024\n",
                  gflop, rate, 100 * rate / gemm512, 100 * rate / gemm1024);
      const double hg = nn::head_forward_flops(cfg.head, 32, 32) / 1e9;
      std::printf("head: %.1f GFLOP per forward -> %.1f GFLOP/s\n", hg, hg / (c.head / 1e3));
    }
    if (bf16) {
      // Whole-network bfloat16 (LibTorch 1.13's CPU autocast leaves LayerNorm weights in float32 and fails).
      try {
        auto net16 = std::dynamic_pointer_cast<nn::Pixel3DMMNetImpl>(net->clone());
        net16->to(torch::kBFloat16);
        const auto x16 = x.to(torch::kBFloat16);
        torch::Tensor o16;
        const double t16 = bench::median_ms([&] { o16 = net16->forward(x16); }, budget, 5);
        std::printf("%-10s %-8s %12s %12s %12.1f %16.2e  (bfloat16 weights and activations: max error vs "
                    "float32; outputs span +-%.2f)\n",
                    label, "C++bf16", "", "", t16, (o16.to(torch::kFloat) - out).abs().max().item<double>(),
                    out.abs().max().item<double>());
      } catch (const std::exception& e) {
        std::printf("%-10s %-8s failed: %s\n", label, "C++bf16", std::string(e.what()).substr(0, 200).c_str());
      }
    }
    std::printf("\n");
  }
  std::filesystem::remove_all(dir);
  return 0;
}
