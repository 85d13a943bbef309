// `pixel3dmm eval`: the reconstruction benchmark (posed and neutral geometry, NeRSemble protocol).
//   pixel3dmm eval synth OUT --cases N --seed K        make the synthetic benchmark
//   pixel3dmm eval run BENCH --method M --out RESULTS  fit every case with a method and score it
//   pixel3dmm eval score BENCH --meshes DIR --out R    score any tool's meshes
//   pixel3dmm eval replicate OUT --cases N             synthetic benchmark + landmarks / uv / full + comparison
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "pixel3dmm/cli/command.h"
#include "pixel3dmm/cli/pipeline.h"
#include "pixel3dmm/cli/progress.h"
#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/eval/benchmark.h"
#include "pixel3dmm/eval/synthetic_benchmark.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEvalUsage =
    "usage: pixel3dmm eval <synth|run|score|replicate> ... (pixel3dmm eval <action> --help for each)\n";

void declare_fit(Args& args) {
  args.option("config", "fit config JSON (fields of configs/fit.json)")
      .repeated("set", "override one fit setting, e.g. --set iters=200")
      .option("flame", "FLAME model (default: the one benchmark.json names, else the synthetic model)")
      .option("identity-noise", "the identity-prior experiment (synthetic benchmarks): give each fit the true "
                                "identity + N(0, S^2) per coefficient as its prior, as MICA's code would be");
}

void declare_score(Args& args) {
  args.option("samples", "points sampled per surface for the metrics", "20000")
      .option("icp-iters", "ICP iterations after the landmark alignment (0: landmarks only)", "50")
      .flag("scale", "similarity alignment (with scale) instead of rigid")
      .option("heatmaps", "cases drawn in heatmaps.png", "3");
}

eval::ScoreOptions score_options(const Args& args) {
  eval::ScoreOptions o;
  o.metrics.samples = args.get_int("samples", 100);
  o.icp.iterations = static_cast<int>(args.get_int("icp-iters", 0));
  o.with_scale = args.flag_set("scale");
  return o;
}

fit::FitConfig fit_config(const Args& args) {
  io::json cfg = args.has("config") ? io::read_json(args.get("config")) : io::json(fit::FitConfig{});
  io::apply_overrides(cfg, args.all("set"));
  return io::parse_config<fit::FitConfig>(cfg, args.has("config") ? args.get("config") : "fit settings");
}

// --identity-noise S (>= 0), or -1 when not given.
double identity_noise(const Args& args) {
  return args.has("identity-noise") ? args.get_double("identity-noise", 0.0) : -1.0;
}

std::string flame_path(const Args& args, const eval::Benchmark* bench) {
  if (args.has("flame")) return args.get("flame");
  return bench ? bench->flame : "";
}

std::function<void(int64_t, int64_t, const eval::CaseScore&)> case_printer(const std::string& label) {
  return [label](int64_t done, int64_t total, const eval::CaseScore& c) {
    if (c.ok)
      std::printf("[%lld/%lld] %s %s: posed L1 %.3f mm, R2.5 %.1f%%; neutral L1 %.3f mm; fit %.1f s\n",
                  static_cast<long long>(done), static_cast<long long>(total), label.c_str(), c.name.c_str(),
                  c.posed.metrics.chamfer_l1, 100 * c.posed.metrics.r25,
                  c.has_neutral ? c.neutral.metrics.chamfer_l1 : NAN, c.fit_seconds);
    else
      std::printf("[%lld/%lld] %s %s: FAILED: %s\n", static_cast<long long>(done), static_cast<long long>(total),
                  label.c_str(), c.name.c_str(), c.error.c_str());
    std::fflush(stdout);
  };
}

void print_summary(const eval::BenchmarkResults& r, const std::string& out) {
  const eval::Summary s = r.summary();
  std::printf("%s: %lld cases (%lld failed): posed L1 %.3f mm, R2.5 %.1f%%, NC %.4f; neutral L1 %.3f mm, R2.5 "
              "%.1f%%; results in %s/results.md\n",
              r.method.c_str(), static_cast<long long>(s.cases), static_cast<long long>(s.failed), s.posed_l1,
              100 * s.posed_r25, s.posed_nc, s.neutral_l1, 100 * s.neutral_r25, out.c_str());
}

int exit_code(const eval::BenchmarkResults& r) { return r.summary().failed > 0 ? kFailure : kOk; }

void declare_synth(Args& args) {
  args.option("cases", "number of cases", "20")
      .option("seed", "benchmark seed (case i of seed K is the same in every run)", "0")
      .option("size", "map and crop size (pixels)", "512")
      .option("yaw", "largest head yaw (degrees)", "75");
}

synth::SyntheticBenchmarkOptions synth_options(const Args& args) {
  synth::SyntheticBenchmarkOptions o;
  o.cases = args.get_int("cases", 1);
  o.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  o.size = args.get_int("size", 64);
  o.yaw_deg = args.get_double("yaw", 0.0);
  return o;
}

eval::Benchmark make_synth(const Args& args, const std::string& out) {
  prepare_output_folder(out);
  const std::string fp = flame_path(args, nullptr);
  const flame::Flame flame(reconstruct::load_flame_or_synthetic(fp), flame::FlameOptions());
  const auto o = synth_options(args);
  Progress progress("synth", o.cases);
  return eval::make_synthetic_benchmark(out, flame, o, fp, [&](int64_t d, int64_t) { progress.update(d); });
}

int run_synth(const std::vector<std::string>& argv) {
  Args args("pixel3dmm eval synth",
            "Writes the synthetic benchmark into OUT: per case the fit inputs (exact rendered UV / normal maps with "
            "noise and outliers; `pixel3dmm fit` reads them), gt_posed.ply, gt_neutral.ply, truth.json; then "
            "cases.jsonl and benchmark.json. Deterministic in --seed.");
  args.positional("out", "output folder", 1, 1);
  declare_synth(args);
  args.option("flame", "FLAME model (default: the synthetic FLAME-layout model)");
  if (!args.parse(argv)) return std::printf("%s", args.help().c_str()), kOk;
  const std::string out = args.positionals()[0];
  const auto bench = make_synth(args, out);
  std::printf("wrote %zu cases to %s\n", bench.cases.size(), out.c_str());
  return kOk;
}

eval::BenchmarkResults run_method(const eval::Benchmark& bench, const flame::Flame& flame, const Args& args,
                                  const std::string& method, const std::string& out,
                                  const predict::Predictor* predictor, double identity_noise = -1.0) {
  prepare_output_folder(out);
  eval::RunOptions o;
  o.identity_noise = identity_noise;
  o.method = method;
  o.config = fit_config(args);
  o.score = score_options(args);
  o.heatmaps = static_cast<int>(args.get_int("heatmaps", 0));
  o.predictor = predictor;
  o.progress = case_printer(method);
  auto r = eval::run_benchmark(bench, flame, o, out);
  print_summary(r, out);
  return r;
}

int run_run(const std::vector<std::string>& argv) {
  Args args("pixel3dmm eval run",
            "Fits every case of a benchmark with one method, scores the meshes against the posed and neutral ground "
            "truth and writes RESULTS/results.md, results.csv, heatmaps.png and meshes/.");
  args.positional("bench", "benchmark folder (cases.jsonl) or manifest file", 1, 1)
      .option("method",
              "landmarks (landmark-only fit), uv (normal term off), normals (UV terms off), full (UV + normals), "
              "ours (= full)",
              "full")
      .option("out", "results folder", "eval-results");
  declare_network_choice(args, ": also fit its predictions on each case's image (method (d))");
  declare_fit(args);
  declare_score(args);
  if (!args.parse(argv)) return std::printf("%s", args.help().c_str()), kOk;
  const auto bench = eval::read_benchmark(args.positionals()[0]);
  const std::string method = args.get("method");
  eval::method_config(method, fit::FitConfig{});  // unknown method: fail before loading anything
  const flame::Flame flame(reconstruct::load_flame_or_synthetic(flame_path(args, &bench)), flame::FlameOptions());
  const auto predictor = chosen_predictor(args, false);
  return exit_code(run_method(bench, flame, args, method, args.get("out"), predictor.get(), identity_noise(args)));
}

int run_score(const std::vector<std::string>& argv) {
  Args args("pixel3dmm eval score",
            "Scores any tool's FLAME-topology meshes: MESHES/<case>_posed.{ply,obj} (and <case>_neutral.{ply,obj} "
            "when the tool gives a neutral mesh) against the benchmark's ground truth.");
  args.positional("bench", "benchmark folder (cases.jsonl) or manifest file", 1, 1)
      .option("meshes", "folder of the method's meshes")
      .option("out", "results folder", "eval-results")
      .option("name", "method name in the tables", "meshes")
      .option("flame", "FLAME model whose face region and landmark embedding score the meshes");
  declare_score(args);
  if (!args.parse(argv)) return std::printf("%s", args.help().c_str()), kOk;
  if (!args.has("meshes")) throw UsageError("--meshes is required");
  const auto bench = eval::read_benchmark(args.positionals()[0]);
  const auto model = reconstruct::load_flame_or_synthetic(flame_path(args, &bench));
  const std::string out = args.get("out");
  prepare_output_folder(out);
  const auto r = eval::score_benchmark(bench, model, args.get("meshes"), score_options(args), out, args.get("name"),
                                       static_cast<int>(args.get_int("heatmaps", 0)), case_printer(args.get("name")));
  print_summary(r, out);
  return exit_code(r);
}

int run_replicate(const std::vector<std::string>& argv) {
  Args args("pixel3dmm eval replicate",
            "The synthetic replication of the paper's fitting ablation in one command: makes OUT/bench (unless it "
            "exists), fits it with each method into OUT/<method>/ and writes OUT/comparison.md: posed and neutral "
            "errors per method and their change against the landmark-only fit.");
  args.positional("out", "output folder", 1, 1)
      .option("methods", "comma-separated methods", "landmarks,uv,full");
  declare_network_choice(args, ": also fit its predictions on each case's image (method (d))");
  declare_synth(args);
  declare_fit(args);
  declare_score(args);
  if (!args.parse(argv)) return std::printf("%s", args.help().c_str()), kOk;
  const std::string out = args.positionals()[0];
  const std::string bench_dir = (fs::path(out) / "bench").string();
  std::vector<std::string> methods;
  {
    std::stringstream ss(args.get("methods"));
    for (std::string m; std::getline(ss, m, ',');)
      if (!m.empty()) methods.push_back(m);
  }
  for (const auto& m : methods) eval::method_config(m, fit::FitConfig{});
  const auto predictor = chosen_predictor(args, false);
  const eval::Benchmark bench = fs::exists(fs::path(bench_dir) / "cases.jsonl") ? eval::read_benchmark(bench_dir)
                                                                               : make_synth(args, bench_dir);
  std::printf("benchmark: %zu cases in %s\n", bench.cases.size(), bench_dir.c_str());
  const flame::Flame flame(reconstruct::load_flame_or_synthetic(flame_path(args, &bench)), flame::FlameOptions());
  std::vector<eval::BenchmarkResults> all;
  const double noise = identity_noise(args);
  for (const auto& m : methods) {
    all.push_back(run_method(bench, flame, args, m, (fs::path(out) / m).string(), nullptr));
    if (noise >= 0)
      all.push_back(run_method(bench, flame, args, m, (fs::path(out) / (m + "-prior")).string(), nullptr, noise));
  }
  if (predictor)
    all.push_back(run_method(bench, flame, args, "full", (fs::path(out) / "network").string(), predictor.get()));
  std::ostringstream md;
  md << "# Synthetic replication (" << bench.cases.size() << " cases, " << bench_dir << ")\n\n"
     << eval::comparison_table(all, "landmarks");
  const std::string table = md.str();
  write_atomically((fs::path(out) / "comparison.md").string(), [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    PIXEL3DMM_CHECK(f && std::fwrite(table.data(), 1, table.size(), f) == table.size() && std::fclose(f) == 0, tmp,
                    ": write failed");
  });
  std::printf("\n%s\nwritten to %s/comparison.md\n", table.c_str(), out.c_str());
  int code = kOk;
  for (const auto& r : all) code = code == kOk ? exit_code(r) : code;
  return code;
}

int run_eval(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::printf("%s", kEvalUsage);
    return argv.empty() ? kUsage : kOk;
  }
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (argv[0] == "synth") return run_synth(rest);
  if (argv[0] == "run") return run_run(rest);
  if (argv[0] == "score") return run_score(rest);
  if (argv[0] == "replicate") return run_replicate(rest);
  throw UsageError("unknown eval action '" + argv[0] + "' (expected synth, run, score or replicate)");
}

}  // namespace

PIXEL3DMM_COMMAND("eval", "the reconstruction benchmark: make the synthetic one, run a method, score meshes",
                  run_eval);

}  // namespace pixel3dmm::cli
