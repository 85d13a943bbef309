#include "pixel3dmm/track/tracker.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::track {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The per-frame parameters the global stage keeps as N-row tables, with their official names.
const std::vector<std::string> kTables = {"exp", "eyes", "eyelids", "t", "R", "jaw", "neck"};

torch::Tensor& field(fit::FitParams& p, const std::string& name) {
  if (name == "exp") return p.expression;
  if (name == "eyes") return p.eyes;
  if (name == "eyelids") return p.eyelids;
  if (name == "t") return p.translation;
  if (name == "R") return p.rotation;
  if (name == "jaw") return p.jaw;
  if (name == "neck") return p.neck;
  if (name == "shape") return p.shape;
  if (name == "fl") return p.focal;
  if (name == "pp") return p.principal_point;
  throw Error("tracker: unknown parameter '" + name + "'");
}

double table_lr(const fit::FitLearningRates& lr, const std::string& name) {
  if (name == "exp") return lr.exp;
  if (name == "eyes") return lr.eyes;
  if (name == "eyelids") return lr.eyelids;
  if (name == "t") return lr.t;
  if (name == "R") return lr.R;
  if (name == "jaw") return lr.jaw;
  if (name == "neck") return lr.neck;
  if (name == "shape") return lr.shape;
  if (name == "fl") return lr.focal;
  return lr.pp;
}

std::string frame_file(const std::string& folder, int64_t i) {
  char name[32];
  std::snprintf(name, sizeof name, "%05lld.safetensors", static_cast<long long>(i));
  return (fs::path(folder) / "online" / name).string();
}

// Reads one saved online frame; a file that does not match (a different model size) is an error naming it.
bool read_frame(const std::string& path, const fit::FitParams& like, fit::FitParams& out, int& steps, double& loss) {
  if (!fs::exists(path)) return false;
  const io::SafetensorsFile f = io::read_safetensors(path);
  out = like.clone();
  for (const auto& [name, t] : like.named()) {
    const auto it = f.tensors.find(name);
    PIXEL3DMM_CHECK_FORMAT(it != f.tensors.end(), path, "missing tensor '", name, "'");
    PIXEL3DMM_CHECK_FORMAT(it->second.sizes() == t.sizes(), path, "tensor '", name, "' is ",
                           shape_string(it->second.sizes()), ", expected ", shape_string(t.sizes()));
    field(out, name) = it->second.to(torch::kFloat).clone();
  }
  steps = std::stoi(f.metadata.count("steps") ? f.metadata.at("steps") : "0");
  loss = std::stod(f.metadata.count("loss") ? f.metadata.at("loss") : "0");
  return true;
}

fit::FitParams cat_rows(const std::vector<fit::FitParams>& frames) {
  fit::FitParams p = frames.back().clone();  // shared parts: the last frame's (all equal while the identity is frozen)
  for (const auto& name : kTables) {
    std::vector<torch::Tensor> rows;
    for (const auto& f : frames) rows.push_back(field(const_cast<fit::FitParams&>(f), name));
    field(p, name) = torch::cat(rows).detach().clone();
  }
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
std::map<std::string, torch::Tensor> smoothness_terms(const fit::FitParams& w, const SmoothnessWeights& s) {
  std::map<std::string, torch::Tensor> terms;
  if (w.batch_size() < 2) return terms;
  auto diff = [](const torch::Tensor& x) {
    return (x.slice(0, 0, x.size(0) - 1) - x.slice(0, 1, x.size(0))).pow(2).mean();
  };
  const double m = s.multiplier;
  terms["smooth/exp"] = diff(w.expression) * (s.exp * m);
  terms["smooth/eyes"] = diff(w.eyes) * (s.eyes * m);
  terms["smooth/eyelids"] = diff(w.eyelids) * (s.eyelids * m);
  terms["smooth/jaw"] = diff(w.jaw) * (s.jaw * m);
  terms["smooth/neck"] = diff(w.neck) * (s.neck * m);
  terms["smooth/R"] = diff(w.rotation) * (s.R * m);
  terms["smooth/t"] = diff(w.translation) * (s.t * m);
  return terms;
}

void lazy_adam_step(torch::Tensor& table, const torch::Tensor& rows, const torch::Tensor& grad, LazyAdamState& st,
                    double lr, double beta1, double beta2, double eps) {
  torch::NoGradGuard no_grad;
  check_shape(grad, {rows.numel(), table.size(1)}, "lazy_adam_step: grad");
  if (!st.exp_avg.defined()) {
    st.exp_avg = torch::zeros_like(table);
    st.exp_avg_sq = torch::zeros_like(table);
  }
  ++st.step;
  // As SparseAdam: the selected rows' moments move towards the gradient; the other rows' moments stay as they are.
  const auto m = st.exp_avg.index_select(0, rows) * beta1 + grad * (1 - beta1);
  const auto v = st.exp_avg_sq.index_select(0, rows) * beta2 + grad * grad * (1 - beta2);
  st.exp_avg.index_copy_(0, rows, m);
  st.exp_avg_sq.index_copy_(0, rows, v);
  const double bc1 = 1 - std::pow(beta1, double(st.step)), bc2 = 1 - std::pow(beta2, double(st.step));
  const double step_size = lr * std::sqrt(bc2) / bc1;
  table.index_add_(0, rows, -step_size * m / (v.sqrt() + eps));
}

torch::Tensor select_frames(int64_t n, int64_t batch, bool random, uint64_t seed, int64_t step) {
  PIXEL3DMM_CHECK(batch >= 1 && batch <= n, "select_frames: batch ", batch, " for ", n, " frames");
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(step),
                    static_cast<uint32_t>(static_cast<uint64_t>(step) >> 32)};
  std::mt19937_64 rng(seq);
  std::vector<int64_t> ids;
  if (random) {
    std::vector<int64_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    // A partial Fisher-Yates with our own index draws: std::shuffle's order is library-specific.
    for (int64_t i = 0; i < batch; ++i) {
      const int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(n - i));
      std::swap(all[i], all[j]);
    }
    ids.assign(all.begin(), all.begin() + batch);
    std::sort(ids.begin(), ids.end());
  } else {
    const int64_t first = static_cast<int64_t>(rng() % static_cast<uint64_t>(n - batch + 1));
    for (int64_t i = 0; i < batch; ++i) ids.push_back(first + i);
  }
  return torch::tensor(ids, torch::kLong);
}

fit::FitParams frame_rows(const fit::FitParams& params, const torch::Tensor& rows) {
  fit::FitParams p = params;
  for (const auto& name : kTables) field(p, name) = field(p, name).index_select(0, rows);
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
Tracker::Tracker(flame::Flame flame, TrackerOptions options)
    : options_(std::move(options)), fitter_(std::move(flame), options_.fit) {
  const auto& g = options_.global;
  PIXEL3DMM_CHECK_T(ValueError, options_.online.iters >= 0, "track.online.iters must be >= 0, got ",
                    options_.online.iters);
  PIXEL3DMM_CHECK_T(ValueError, g.iters >= 0, "track.global.iters must be >= 0, got ", g.iters);
  PIXEL3DMM_CHECK_T(ValueError, g.batch_size >= 2, "track.global.batch_size must be >= 2, got ", g.batch_size);
  PIXEL3DMM_CHECK_T(ValueError, g.lr_decay_at.size() == g.lr_decay.size(), "track.global.lr_decay_at has ",
                    g.lr_decay_at.size(), " entries but lr_decay has ", g.lr_decay.size());
  PIXEL3DMM_CHECK_T(ValueError, g.checkpoint_every >= 1, "track.global.checkpoint_every must be >= 1, got ",
                    g.checkpoint_every);
}

void Tracker::evaluate(TrackResult& r) const {
  torch::NoGradGuard no_grad;
  const int64_t n = r.params.batch_size();
  std::vector<torch::Tensor> world, flame_space;
  for (int64_t i = 0; i < n; i += 32) {
    const auto rows = torch::arange(i, std::min(n, i + 32), torch::kLong);
    const auto ev = fitter_.evaluate(fitter_.padded(frame_rows(r.params, rows)));
    world.push_back(ev.vertices);
    flame_space.push_back(ev.flame.vertices);
  }
  r.vertices = torch::cat(world);
  r.vertices_flame = torch::cat(flame_space);
  flame::FlameParams neutral;
  neutral.shape = fitter_.padded(r.params).shape;
  r.canonical = fitter_.flame().ptr()->forward(neutral).v_shaped;
}

TrackResult Tracker::track(const std::vector<fit::FitTarget>& frames, const std::string& state,
                           const TrackCallback& on_progress) const {
  PIXEL3DMM_CHECK_T(ValueError, !frames.empty(), "track: no frames");
  const int64_t n = static_cast<int64_t>(frames.size());
  const fit::FitConfig& cfg = options_.fit;
  const OnlineOptions& on = options_.online;
  const GlobalOptions& g = options_.global;
  TrackResult result;
  // Official: the mean of the frames' MICA codes starts the identity (frozen through the online stage) and is the
  // target of reg/shape in both stages.
  const auto [prior, prior_codes] = fitter_.identity_prior(frames);
  result.identity_prior = prior;

  // ---- the state folder: refuse one made with other options, another frame count or another identity prior ----
  if (!state.empty()) {
    fs::create_directories(fs::path(state) / "online");
    io::json identity = {{"options", io::json(options_)}, {"frames", n}};
    if (prior.defined()) {
      const auto c = prior.to(torch::kDouble).contiguous();
      identity["identity_prior"] = std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    }
    const std::string id_path = (fs::path(state) / "options.json").string();
    if (fs::exists(id_path)) {
      PIXEL3DMM_CHECK_T(ValueError, io::read_json(id_path) == identity, id_path,
                        ": this state folder belongs to a run with other options, another number of frames "
                        "(", n, " now) or another identity prior; use a fresh folder or delete it");
    } else {
      io::write_json(id_path, identity);
    }
  }

  // ---- online stage ----
  const auto t_online = std::chrono::steady_clock::now();
  std::vector<fit::PreparedTargets> prepared;
  std::vector<fit::FitParams> per_frame;
  const fit::FitParams initial = fit::FitParams::initial(1, cfg.n_shape, cfg.n_expr, cfg.focal_init, prior);
  for (int64_t i = 0; i < n; ++i) {
    prepared.push_back(fitter_.prepare({frames[static_cast<size_t>(i)]}));
    prepared.back().identity_prior = prior;
    prepared.back().identity_codes = prior_codes;
    fit::FitParams done;
    int steps = 0;
    double loss = 0.0;
    if (!state.empty() && read_frame(frame_file(state, i), initial, done, steps, loss)) {
      per_frame.push_back(done);
      result.online_steps.push_back(steps);
      result.online_loss.push_back(loss);
      if (on_progress && !on_progress({"online", i + 1, n, loss, 0})) return result;
      continue;
    }
    fit::FitStages st;
    st.iters = on.iters;
    st.optimise_shape = on.optimise_shape;
    fit::FitParams start = initial;
    if (i > 0) {
      st.camera = false;
      st.first_frame = false;
      st.early_stopping_delta = on.early_stopping_delta;
      start = per_frame.back().clone();
      if (on.discontinuous) {
        // Official is_discontinuous: the per-frame parameters restart from their initial values; identity and
        // camera are kept.
        for (const auto& name : kTables) field(start, name) = field(const_cast<fit::FitParams&>(initial), name);
      }
    }
    const fit::FitResult r = fitter_.fit_stages(prepared.back(), start, st);
    per_frame.push_back(r.params);
    steps = r.iterations;
    loss = r.log.empty() ? 0.0 : r.log.back().total;
    result.online_steps.push_back(steps);
    result.online_loss.push_back(loss);
    if (!state.empty()) {
      io::TensorMap tensors;
      for (const auto& [name, t] : r.params.named()) tensors[name] = t.contiguous();
      io::write_safetensors(frame_file(state, i), tensors,
                            {{"steps", std::to_string(steps)}, {"loss", std::to_string(loss)}});
    }
    if (on_progress && !on_progress({"online", i + 1, n, loss, steps})) {
      result.online_seconds = seconds_since(t_online);
      return result;
    }
  }
  result.online_params = cat_rows(per_frame);
  result.online_seconds = seconds_since(t_online);

  // ---- global stage ----
  const auto t_global = std::chrono::steady_clock::now();
  fit::FitParams p = result.online_params.clone();
  if (n > 1 && g.iters > 0) {
    fit::PreparedTargets all = fit::PreparedTargets::cat(prepared);
    all.identity_prior = prior;  // every frame carries the sequence's prior: keep it exact, not re-averaged
    all.identity_codes = prior_codes;
    prepared.clear();
    const int64_t batch = std::min<int64_t>(g.batch_size, n);
    std::vector<std::string> tables = kTables, dense = {"shape"};
    if (!cfg.include_neck) tables.erase(std::find(tables.begin(), tables.end(), "neck"));
    if (g.optimise_camera) dense.push_back("fl"), dense.push_back("pp");
    std::map<std::string, LazyAdamState> adam;
    int64_t step0 = 0;
    const std::string state_path = state.empty() ? "" : (fs::path(state) / "global.safetensors").string();
    if (!state_path.empty() && fs::exists(state_path)) {
      const io::SafetensorsFile f = io::read_safetensors(state_path);
      auto get = [&](const std::string& key, const torch::Tensor& like) {
        const auto it = f.tensors.find(key);
        PIXEL3DMM_CHECK_FORMAT(it != f.tensors.end(), state_path, "missing tensor '", key, "'");
        PIXEL3DMM_CHECK_FORMAT(it->second.sizes() == like.sizes(), state_path, "tensor '", key, "' is ",
                               shape_string(it->second.sizes()), ", expected ", shape_string(like.sizes()));
        return it->second.to(torch::kFloat).clone();
      };
      for (const auto& names : {tables, dense})
        for (const auto& name : names) {
          torch::Tensor& x = field(p, name);
          x = get("param/" + name, x);
          LazyAdamState& s = adam[name];
          s.exp_avg = get("exp_avg/" + name, x);
          s.exp_avg_sq = get("exp_avg_sq/" + name, x);
          s.step = std::stoll(f.metadata.at("adam_step/" + name));
        }
      step0 = std::stoll(f.metadata.at("step"));
      const auto losses = f.tensors.at("loss").to(torch::kDouble).contiguous();
      result.global_loss.assign(losses.data_ptr<double>(), losses.data_ptr<double>() + losses.numel());
    }
    auto save = [&](int64_t step) {
      io::TensorMap t;
      io::Metadata meta{{"step", std::to_string(step)}};
      for (const auto& names : {tables, dense})
        for (const auto& name : names) {
          const LazyAdamState& s = adam[name];
          t["param/" + name] = field(p, name).contiguous();
          t["exp_avg/" + name] = s.exp_avg.defined() ? s.exp_avg : torch::zeros_like(field(p, name));
          t["exp_avg_sq/" + name] = s.exp_avg_sq.defined() ? s.exp_avg_sq : torch::zeros_like(field(p, name));
          meta["adam_step/" + name] = std::to_string(s.step);
        }
      t["loss"] = torch::tensor(result.global_loss, torch::kDouble);
      io::write_safetensors(state_path, t, meta);
    };

    const int smooth_from = static_cast<int>(g.smooth_start * g.iters);
    for (int64_t k = step0; k < g.iters; ++k) {
      double factor = 1.0;
      for (size_t j = 0; j < g.lr_decay_at.size(); ++j)
        if (k >= static_cast<int64_t>(g.lr_decay_at[j] * g.iters)) factor *= g.lr_decay[j];
      const bool random = !g.smooth || on.discontinuous || (k < smooth_from && k % 2 == 0);
      const torch::Tensor rows = select_frames(n, batch, random, g.seed, k);
      fit::FitParams b = frame_rows(p, rows);
      for (const auto& name : tables) field(b, name) = field(b, name).detach().requires_grad_(true);
      for (const auto& name : dense) field(b, name) = field(b, name).detach().requires_grad_(true);
      auto terms = fitter_.full_stage_terms(b, all.rows(rows), cfg.loss.silhouette);
      if (g.smooth && !on.discontinuous && !random && k >= smooth_from && k % 2 == 1)
        for (auto& [name, v] : smoothness_terms(b, g.smoothness)) terms[name] = v;
      torch::Tensor total = torch::zeros({});
      for (const auto& [name, v] : terms) total = total + v;
      const double value = total.item<double>();
      PIXEL3DMM_CHECK(std::isfinite(value), "track: the loss became non-finite at global step ", k);
      total.backward();
      for (const auto& name : tables) {
        const torch::Tensor grad = field(b, name).grad();
        if (grad.defined()) lazy_adam_step(field(p, name), rows, grad, adam[name], table_lr(cfg.lr, name) * factor);
      }
      // The shared parameters: plain Adam (one row, always selected), never decayed, as the official dense Adam.
      const auto row0 = torch::zeros({1}, torch::kLong);
      for (const auto& name : dense) {
        const torch::Tensor grad = field(b, name).grad();
        if (grad.defined()) lazy_adam_step(field(p, name), row0, grad, adam[name], table_lr(cfg.lr, name));
      }
      result.global_loss.push_back(value);
      if (!state_path.empty() && ((k + 1) % g.checkpoint_every == 0 || k + 1 == g.iters)) save(k + 1);
      if (on_progress && !on_progress({"global", k + 1, g.iters, value, 1})) {
        result.params = p;
        result.global_seconds = seconds_since(t_global);
        return result;
      }
    }
  }
  result.params = p.clone();
  result.global_seconds = seconds_since(t_global);
  evaluate(result);
  result.complete = true;
  return result;
}

}  // namespace pixel3dmm::track
