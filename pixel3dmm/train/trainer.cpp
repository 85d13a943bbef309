#include "pixel3dmm/train/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/plot.h"
#include "pixel3dmm/train/checkpoint.h"

namespace pixel3dmm::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLogHeader = "step,epoch,lr,loss,grad_norm,images_per_second,elapsed_s";
constexpr const char* kValHeader = "step,samples,loss,uv_error,uv_error_px,normal_error_deg";

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

/// The first column (the step) of a CSV row, or -1 for a header or a torn line.
int64_t row_step(const std::string& line) {
  if (line.empty() || !std::isdigit(static_cast<unsigned char>(line[0]))) return -1;
  try {
    return std::stoll(line.substr(0, line.find(',')));
  } catch (...) {
    return -1;
  }
}

/// Rows of a CSV file as (step, columns); the header and torn lines are skipped.
std::vector<std::vector<double>> read_rows(const std::string& path) {
  std::vector<std::vector<double>> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (row_step(line) < 0) continue;
    std::vector<double> cols;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cols.push_back(cell.empty() ? NAN : std::strtod(cell.c_str(), nullptr));
    rows.push_back(std::move(cols));
  }
  return rows;
}

std::string format_double(double v) {
  if (!std::isfinite(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

void TrainerOptions::validate() const {
  const auto positive = [](int64_t v, const char* name) {
    PIXEL3DMM_CHECK_T(ValueError, v > 0, "trainer option ", name, " must be positive, found ", v);
  };
  const auto non_negative = [](double v, const char* name) {
    PIXEL3DMM_CHECK_T(ValueError, std::isfinite(v) && v >= 0, "trainer option ", name,
                      " must be a finite number >= 0, found ", v);
  };
  positive(steps, "steps");
  positive(batch_size, "batch_size");
  positive(log_every, "log_every");
  // the optimiser steps float32 tensors: a rate beyond float's range would fail inside LibTorch mid-run
  const auto learning_rate = [](double v, const char* name) {
    PIXEL3DMM_CHECK_T(ValueError, std::isfinite(v) && v >= 0 && v <= std::numeric_limits<float>::max(),
                      "trainer option ", name, " must be a learning rate in [0, 3.4e38] (float32), found ", v);
  };
  learning_rate(lr, "lr");
  learning_rate(lr_backbone, "lr_backbone");
  non_negative(weight_decay, "weight_decay");
  non_negative(grad_clip, "grad_clip");
  non_negative(loss_weight, "loss_weight");
  non_negative(static_cast<double>(warmup_steps), "warmup_steps");
  non_negative(static_cast<double>(val_every), "val_every");
  non_negative(static_cast<double>(checkpoint_every), "checkpoint_every");
  PIXEL3DMM_CHECK_T(ValueError, beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
                    "trainer options beta1, beta2 must lie in [0, 1), found ", beta1, ", ", beta2);
  PIXEL3DMM_CHECK_T(ValueError, eps > 0, "trainer option eps must be positive, found ", eps);
  PIXEL3DMM_CHECK_T(ValueError, warmup_steps < steps, "trainer option warmup_steps (", warmup_steps,
                    ") must be below steps (", steps, ")");
}

double learning_rate_factor(int64_t step, int64_t warmup_steps, int64_t steps) {
  const double k = static_cast<double>(step + 1);
  if (k <= static_cast<double>(warmup_steps)) return k / static_cast<double>(warmup_steps);
  const double theta = (k - warmup_steps) / static_cast<double>(steps - warmup_steps) * M_PI;
  return (1.0 + std::cos(theta)) / 2.0;
}

torch::Tensor masked_l1(const torch::Tensor& output, const torch::Tensor& target, const torch::Tensor& mask) {
  return (mask * (target - output)).abs().mean();
}

std::array<double, 4> uv_error_sums(const torch::Tensor& output, const torch::Tensor& target,
                                    const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  const auto fg = mask.squeeze(1) > 0.5;
  const auto truth = (target + 1) / 2, delta = ((output + 1) / 2).clamp(0, 1) - truth;
  const double err = delta.norm(2, 1).masked_select(fg).sum().item<double>();
  // The error's size in the image: invert the true UV map's Jacobian (central differences where both neighbours
  // on each axis are foreground, so the silhouette's jump to the background value is never differentiated).
  const int64_t t = truth.size(-1), inner = t - 2;
  if (inner <= 0) return {err, fg.sum().item<double>(), 0.0, 0.0};
  const auto at = [&](const torch::Tensor& x, int64_t dr, int64_t dc) {  // dr, dc in {0, 1, 2}; 1 = centre
    return x.narrow(-2, dr, inner).narrow(-1, dc, inner);
  };
  const auto dx = (at(truth, 1, 2) - at(truth, 1, 0)) / 2, dy = (at(truth, 2, 1) - at(truth, 0, 1)) / 2;
  const auto ux = dx.select(1, 0), vx = dx.select(1, 1), uy = dy.select(1, 0), vy = dy.select(1, 1);
  const auto det = ux * vy - uy * vx;
  const auto valid = at(fg, 1, 1) & at(fg, 1, 2) & at(fg, 1, 0) & at(fg, 2, 1) & at(fg, 0, 1) & (det.abs() > 1e-10);
  const auto d = at(delta, 1, 1);
  const auto safe = torch::where(valid, det, torch::ones_like(det));
  const auto px = (vy * d.select(1, 0) - uy * d.select(1, 1)) / safe;
  const auto py = (-vx * d.select(1, 0) + ux * d.select(1, 1)) / safe;
  const auto dist = (px * px + py * py).sqrt().clamp_max(static_cast<double>(t) / 8.0);
  return {err, fg.sum().item<double>(), dist.masked_select(valid).sum().item<double>(), valid.sum().item<double>()};
}

std::array<double, 4> normal_error_sums(const torch::Tensor& output, const torch::Tensor& target,
                                        const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  const auto fg = mask.squeeze(1) > 0.5;
  const auto pred = output / output.norm(2, 1, true).clamp_min(1e-8);
  const auto cos = (pred * target).sum(1).clamp(-1, 1);
  return {(torch::acos(cos) * (180.0 / M_PI)).masked_select(fg).sum().item<double>(), fg.sum().item<double>(), 0.0,
          0.0};
}

nn::Pixel3DMMNet Trainer::initial_network(const nn::NetworkConfig& config, uint64_t seed) {
  config.validate("network config");
  torch::manual_seed(seed);
  return nn::Pixel3DMMNet(config);
}

Trainer::Trainer(nn::Pixel3DMMNet net, TrainerOptions options, std::string run_dir, distributed::ProcessGroup group)
    : net_(std::move(net)), options_(std::move(options)), run_dir_(std::move(run_dir)), group_(std::move(group)) {
  options_.validate();
  PIXEL3DMM_CHECK_T(ValueError, options_.batch_size % group_.world_size() == 0, "trainer option batch_size (",
                    options_.batch_size, ", the global batch) must be a multiple of the ", group_.world_size(),
                    " processes of the run");
  std::error_code ec;
  fs::create_directories(run_dir_, ec);
  PIXEL3DMM_CHECK_T(Error, fs::is_directory(run_dir_), run_dir_, ": cannot create the run folder");

  for (auto& p : net_->backbone->parameters()) p.set_requires_grad(options_.finetune_backbone);
  // The official groups: decay / no decay (biases and LayerNorm parameters) x head / backbone.
  std::set<const void*> layer_norm;
  for (const auto& m : net_->modules(/*include_self=*/false))
    if (m->as<torch::nn::LayerNorm>() != nullptr)
      for (const auto& p : m->parameters(false)) layer_norm.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> groups[4];  // head decay, backbone decay, head no decay, backbone no decay
  for (const auto& item : net_->named_parameters()) {
    const auto& p = item.value();
    if (!p.requires_grad()) continue;
    const bool backbone = starts_with(item.key(), "backbone.");
    const std::string& name = item.key();
    const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool no_decay = bias || layer_norm.count(p.unsafeGetTensorImpl()) > 0;
    groups[(no_decay ? 2 : 0) + (backbone ? 1 : 0)].push_back(p);
  }
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (int g = 0; g < 4; ++g) {
    if (groups[g].empty()) continue;
    const double lr = (g % 2 == 1) ? options_.lr_backbone : options_.lr;
    auto opts = std::make_unique<torch::optim::AdamWOptions>(lr);
    opts->betas({options_.beta1, options_.beta2}).eps(options_.eps).weight_decay(g < 2 ? options_.weight_decay : 0.0);
    param_groups.emplace_back(groups[g], std::move(opts));
    base_lrs_.push_back(lr);
  }
  PIXEL3DMM_CHECK_T(ValueError, !param_groups.empty(), "Trainer: the network has no trainable parameters");
  optimizer_ = std::make_unique<torch::optim::AdamW>(param_groups, torch::optim::AdamWOptions(options_.lr));

  nlohmann::json config;
  config["network"] = net_->config.to_json();
  config["trainer"] = options_;
  if (writer()) io::write_json((fs::path(run_dir_) / "config.json").string(), config);
}

double Trainer::loss_weight() const {
  if (options_.loss_weight > 0) return options_.loss_weight;
  return net_->config.prediction_type == nn::PredictionType::UV ? 10.0 : 0.1;
}

void Trainer::set_learning_rates(int64_t step) {
  const double f = learning_rate_factor(step, options_.warmup_steps, options_.steps);
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g)
    static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(base_lrs_[g] * f);
}

bool Trainer::resume() {
  const auto latest = latest_checkpoint(run_dir_);
  if (!latest) return false;
  resume_from(*latest);
  return true;
}

void Trainer::resume_from(const std::string& checkpoint) {
  const nlohmann::json state = load_checkpoint(checkpoint, net_, *optimizer_);
  PIXEL3DMM_CHECK_T(FormatError, state.contains("step") && state["step"].is_number_integer(), checkpoint,
                    "/trainer.json: no integer 'step'");
  step_ = state["step"].get<int64_t>();
  if (writer()) truncate_logs();
}

std::string Trainer::save_checkpoint() {
  nlohmann::json state;
  state["step"] = step_;
  state["trainer"] = options_;
  const std::string folder = checkpoint_path(run_dir_, step_);
  if (!writer()) return folder;
  train::save_checkpoint(folder, net_, *optimizer_, state);
  prune_checkpoints(run_dir_, options_.keep_checkpoints);
  return folder;
}

void Trainer::truncate_logs() {
  // Rows written after the checkpoint (by the run that was interrupted) and a torn last line are dropped, so the
  // resumed run's rows follow on as an uninterrupted run's would.
  for (const char* name : {"log.csv", "val.csv"}) {
    const std::string path = (fs::path(run_dir_) / name).string();
    if (!fs::exists(path)) continue;
    std::ifstream in(path);
    std::string header, line, kept;
    if (!std::getline(in, header)) continue;
    const auto columns = std::count(header.begin(), header.end(), ',');
    kept = header + "\n";
    while (std::getline(in, line)) {
      const int64_t s = row_step(line);
      if (s >= 0 && s <= step_ && std::count(line.begin(), line.end(), ',') == columns) kept += line + "\n";
    }
    write_file_atomically(path, kept);
  }
}

void Trainer::append_log(const TrainLogEntry& e) {
  const std::string path = (fs::path(run_dir_) / "log.csv").string();
  const bool fresh = !fs::exists(path);
  std::ofstream out(path, std::ios::app);
  if (fresh) out << kLogHeader << "\n";
  out << e.step << "," << e.epoch << "," << format_double(e.lr) << "," << format_double(e.loss) << ","
      << format_double(e.grad_norm) << "," << format_double(e.images_per_second) << ","
      << format_double(e.elapsed_s) << "\n";
  PIXEL3DMM_CHECK_T(Error, out.good(), path, ": cannot append to the training log");
}

void Trainer::append_validation(const ValidationMetrics& m) {
  const std::string path = (fs::path(run_dir_) / "val.csv").string();
  const bool fresh = !fs::exists(path);
  std::ofstream out(path, std::ios::app);
  if (fresh) out << kValHeader << "\n";
  out << m.step << "," << m.samples << "," << format_double(m.loss) << "," << format_double(m.uv_error) << ","
      << format_double(m.uv_error_px) << "," << format_double(m.normal_error_deg) << "\n";
  PIXEL3DMM_CHECK_T(Error, out.good(), path, ": cannot append to the validation log");
}

void Trainer::write_plot() const {
  io::PlotSeries train{"training loss", {}, {}, {0, 90, 200}}, val{"validation loss", {}, {}, {220, 50, 0}};
  for (const auto& r : read_rows((fs::path(run_dir_) / "log.csv").string()))
    if (r.size() > 3) train.x.push_back(r[0]), train.y.push_back(r[3]);
  for (const auto& r : read_rows((fs::path(run_dir_) / "val.csv").string()))
    if (r.size() > 2) val.x.push_back(r[0]), val.y.push_back(r[2]);
  io::PlotOptions options;
  options.title = "loss (" + nn::to_string(net_->config.prediction_type) + ")";
  io::write_image((fs::path(run_dir_) / "loss.png").string(), io::line_plot({train, val}, options)[0]);
}

ValidationMetrics Trainer::validate(const SampleSource& val) {
  ValidationMetrics m;
  m.step = step_;
  const int64_t n = options_.val_samples > 0 ? std::min(options_.val_samples, val.size) : val.size;
  if (n == 0) return m;
  torch::NoGradGuard no_grad;
  net_->eval();
  const bool uv = net_->config.prediction_type == nn::PredictionType::UV;
  const double weight = loss_weight();
  double loss_sum = 0, err_sum = 0, px_sum = 0, mask_sum = 0, px_count = 0;
  const int64_t batch = std::max<int64_t>(1, std::min<int64_t>(options_.batch_size, 8));
  const auto mine = distributed::shard(n, group_.rank(), group_.world_size());
  const int64_t count = static_cast<int64_t>(mine.size());
  for (int64_t first = 0; first < count; first += batch) {
    std::vector<TrainingBatch> items;
    for (int64_t i = first; i < std::min(count, first + batch); ++i)
      items.push_back(prepare_sample(val.get(mine[static_cast<size_t>(i)]), net_->config, nullptr, 0));
    const TrainingBatch b = collate(items);
    const auto out = net_->forward(b.image);
    loss_sum += weight * masked_l1(out, b.target, b.mask).item<double>() * static_cast<double>(items.size());
    const auto sums = uv ? uv_error_sums(out, b.target, b.mask) : normal_error_sums(out, b.target, b.mask);
    err_sum += sums[0];
    mask_sum += sums[1];
    px_sum += sums[2];
    px_count += sums[3];
  }
  net_->train();
  if (group_.distributed()) {
    const auto sums = group_.all_reduce_sum({loss_sum, err_sum, mask_sum, px_sum, px_count});
    loss_sum = sums[0], err_sum = sums[1], mask_sum = sums[2], px_sum = sums[3], px_count = sums[4];
  }
  m.samples = n;
  m.loss = loss_sum / static_cast<double>(n);
  if (uv) {
    m.uv_error = err_sum / std::max(mask_sum, 1.0);
    m.uv_error_px = px_sum / std::max(px_count, 1.0);
  } else {
    m.normal_error_deg = err_sum / std::max(mask_sum, 1.0);
  }
  return m;
}

void Trainer::broadcast_state() {
  if (!group_.distributed()) return;
  std::vector<torch::Tensor> tensors{torch::tensor({static_cast<double>(step_)}, torch::kFloat64)};
  for (const auto& p : net_->parameters()) tensors.push_back(p);
  for (const auto& b : net_->buffers()) tensors.push_back(b);
  // Which parameters have optimiser moments on rank 0 (a fresh run: none); the others follow.
  std::vector<torch::Tensor> params;
  for (const auto& g : optimizer_->param_groups())
    for (const auto& p : g.params()) params.push_back(p);
  auto& states = optimizer_->state();
  const auto state_key = [](const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); };
  auto has = torch::zeros({static_cast<int64_t>(params.size())}, torch::kFloat64);
  for (size_t i = 0; i < params.size(); ++i) has[static_cast<int64_t>(i)] = states.count(state_key(params[i])) ? 1 : 0;
  std::vector<torch::Tensor> flags{has};
  group_.broadcast(flags);
  std::vector<torch::Tensor> moments;
  auto steps = torch::zeros({static_cast<int64_t>(params.size())}, torch::kFloat64);
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string k = state_key(params[i]);
    if (has[static_cast<int64_t>(i)].item<double>() == 0) {
      states.erase(k);
      continue;
    }
    if (!states.count(k)) {
      auto st = std::make_unique<torch::optim::AdamWParamState>();
      st->step(0);
      st->exp_avg(torch::zeros_like(params[i], torch::MemoryFormat::Preserve));
      st->exp_avg_sq(torch::zeros_like(params[i], torch::MemoryFormat::Preserve));
      states[k] = std::move(st);
    }
    auto& st = static_cast<torch::optim::AdamWParamState&>(*states[k]);
    steps[static_cast<int64_t>(i)] = static_cast<double>(st.step());
    moments.push_back(st.exp_avg());
    moments.push_back(st.exp_avg_sq());
  }
  tensors.push_back(steps);
  tensors.insert(tensors.end(), moments.begin(), moments.end());
  group_.broadcast(tensors);
  step_ = static_cast<int64_t>(tensors[0].item<double>());
  for (size_t i = 0; i < params.size(); ++i)
    if (has[static_cast<int64_t>(i)].item<double>() != 0)
      static_cast<torch::optim::AdamWParamState&>(*states[state_key(params[i])])
          .step(static_cast<int64_t>(steps[static_cast<int64_t>(i)].item<double>()));
}

void Trainer::check_replicas() const {
  std::vector<torch::Tensor> tensors;
  std::vector<std::string> names;
  for (const auto& item : net_->named_parameters()) tensors.push_back(item.value()), names.push_back(item.key());
  const auto& states = optimizer_->state();
  for (const auto& item : net_->named_parameters()) {
    const auto it = states.find(c10::guts::to_string(item.value().unsafeGetTensorImpl()));
    if (it == states.end()) continue;
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    tensors.push_back(st.exp_avg()), names.push_back(item.key() + ".exp_avg");
    tensors.push_back(st.exp_avg_sq()), names.push_back(item.key() + ".exp_avg_sq");
  }
  group_.check_identical(tensors, names, "parameters and optimiser state after step " + std::to_string(step_));
}

ValidationMetrics Trainer::train(const SampleSource& train, const SampleSource& val, const TrainCallbacks& cb) {
  try {
    return train_loop(train, val, cb);
  } catch (const distributed::PeerLost&) {
    throw;
  } catch (const std::exception& e) {
    group_.report_failure(e.what());  // so the other ranks' errors can say why this one stopped
    throw;
  }
}

ValidationMetrics Trainer::train_loop(const SampleSource& train, const SampleSource& val, const TrainCallbacks& cb_in) {
  // Progress reports, logs, plots and checkpoints come from rank 0 only.
  const TrainCallbacks cb = writer() ? cb_in : TrainCallbacks{};
  broadcast_state();
  DataLoaderOptions lo;
  lo.batch_size = options_.batch_size;
  lo.seed = options_.seed;
  lo.prefetch = options_.prefetch;
  lo.rank = group_.rank();
  lo.world_size = group_.world_size();
  DataLoader loader(train, net_->config, lo, options_.augment);
  loader.seek(step_);
  net_->train();
  const bool frozen = !options_.finetune_backbone;
  const double weight = loss_weight();
  std::vector<torch::Tensor> params;
  for (const auto& g : optimizer_->param_groups())
    for (const auto& p : g.params()) params.push_back(p);
  distributed::GradientSync sync(group_, params);
#ifdef NDEBUG
  const char* check_env = std::getenv("PIXEL3DMM_DIST_CHECK");
  const bool check = group_.distributed() && check_env != nullptr && std::string(check_env) == "1";
#else
  const bool check = group_.distributed();
#endif

  const auto start = std::chrono::steady_clock::now();
  auto last_log = start;
  double loss_acc = 0;
  int64_t loss_steps = 0;
  const auto validate_and_report = [&] {
    if (val.size == 0) return ValidationMetrics{step_, 0};
    const ValidationMetrics m = validate(val);
    if (writer()) append_validation(m);
    if (cb.on_validation) cb.on_validation(m);
    return m;
  };

  while (step_ < options_.steps) {
    const TrainingBatch b = loader.next();
    set_learning_rates(step_);
    optimizer_->zero_grad();
    torch::Tensor out;
    if (frozen) {
      torch::Tensor features;
      {
        torch::NoGradGuard no_grad;
        features = net_->features(b.image);
      }
      out = net_->head->forward(features);
    } else {
      out = net_->forward(b.image);
    }
    const auto loss = weight * masked_l1(out, b.target, b.mask);
    const double loss_value = loss.item<double>();
    PIXEL3DMM_CHECK_T(Error, std::isfinite(loss_value), "training: the loss became ", loss_value, " at step ",
                      step_ + 1, " (batch ", b.ids.front(), ", ...); the last checkpoint holds the last good state",
                      " (lower lr or enable grad_clip)");
    sync.prepare();
    loss.backward();
    sync.finish();  // every rank's gradients are now the global batch's
    const double max_norm = options_.grad_clip > 0 ? options_.grad_clip : std::numeric_limits<double>::infinity();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
    PIXEL3DMM_CHECK_T(Error, std::isfinite(grad_norm), "training: the gradient norm became ", grad_norm,
                      " at step ", step_ + 1, "; the last checkpoint holds the last good state");
    optimizer_->step();
    ++step_;
    loss_acc += loss_value;
    ++loss_steps;
    if (check) check_replicas();

    if (step_ % options_.log_every == 0 || step_ == options_.steps) {
      if (group_.distributed())  // the global batch's loss: each rank's is the mean of its equal share
        loss_acc = group_.all_reduce_sum({loss_acc})[0] / static_cast<double>(group_.world_size());
      const auto now = std::chrono::steady_clock::now();
      TrainLogEntry e;
      e.step = step_;
      e.epoch = (step_ - 1) / loader.steps_per_epoch();
      e.lr = options_.lr * learning_rate_factor(step_ - 1, options_.warmup_steps, options_.steps);
      e.loss = loss_acc / static_cast<double>(loss_steps);
      e.grad_norm = grad_norm;
      e.images_per_second = static_cast<double>(loss_steps * options_.batch_size) /
                            std::max(1e-9, std::chrono::duration<double>(now - last_log).count());
      e.elapsed_s = std::chrono::duration<double>(now - start).count();
      if (writer()) append_log(e);
      if (cb.on_log) cb.on_log(e);
      loss_acc = 0;
      loss_steps = 0;
      last_log = now;
    }
    if (step_ < options_.steps) {
      if (options_.val_every > 0 && step_ % options_.val_every == 0) {
        validate_and_report();
        if (writer()) write_plot();
      }
      if (options_.checkpoint_every > 0 && step_ % options_.checkpoint_every == 0) {
        const std::string ck = save_checkpoint();
        if (cb.on_checkpoint) cb.on_checkpoint(ck);
      }
    }
  }
  const ValidationMetrics final_metrics = validate_and_report();
  const std::string ck = save_checkpoint();
  if (cb.on_checkpoint) cb.on_checkpoint(ck);
  if (writer()) {
    nn::save_network(net_, (fs::path(run_dir_) / "model.safetensors").string());
    write_plot();
  }
  group_.barrier();  // no rank leaves (and takes its half of the store and pairs away) before rank 0 has written
  return final_metrics;
}

}  // namespace pixel3dmm::train
