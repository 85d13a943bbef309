#include "pixel3dmm/cli/args.h"

#include <sstream>
#include <stdexcept>

namespace pixel3dmm::cli {

Args::Args(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {
  flag("help", "show this help and exit");
}

Args& Args::option(const std::string& name, const std::string& help, const std::string& default_value) {
  specs_[name] = {help, default_value, true, false};
  order_.push_back(name);
  return *this;
}

Args& Args::repeated(const std::string& name, const std::string& help) {
  specs_[name] = {help, "", true, true};
  order_.push_back(name);
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  specs_[name] = {help, "", false, false};
  order_.push_back(name);
  return *this;
}

Args& Args::positional(const std::string& name, const std::string& help, int min, int max) {
  positional_name_ = name;
  positional_help_ = help;
  positional_min_ = min;
  positional_max_ = max;
  return *this;
}

bool Args::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const auto it = specs_.find(name);
    if (it == specs_.end()) throw UsageError("unknown option --" + name + " (see " + program_ + " --help)");
    if (!it->second.takes_value) {
      if (inline_value) throw UsageError("option --" + name + " takes no value");
      values_[name] = {"1"};
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) throw UsageError("option --" + name + " needs a value");
      value = args[++i];
    }
    if (!it->second.repeats && values_.count(name)) throw UsageError("option --" + name + " given twice");
    values_[name].push_back(value);
  }
  if (flag_set("help")) return false;
  const int n = static_cast<int>(positionals_.size());
  if (n < positional_min_)
    throw UsageError("missing " + (positional_name_.empty() ? std::string("argument") : positional_name_));
  if (positional_max_ >= 0 && n > positional_max_)
    throw UsageError("unexpected argument '" + positionals_[positional_max_] + "'");
  return true;
}

std::string Args::get(const std::string& name) const {
  if (const auto v = values_.find(name); v != values_.end()) return v->second.back();
  const auto s = specs_.find(name);
  if (s == specs_.end()) throw std::logic_error("Args::get: undeclared option " + name);
  return s->second.default_value;
}

int64_t Args::get_int(const std::string& name, int64_t min) const {
  const std::string s = get(name);
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || v < min)
    throw UsageError("--" + name + ": expected an integer" + (min > INT64_MIN ? " >= " + std::to_string(min) : "") +
                     ", found '" + s + "'");
  return v;
}

double Args::get_double(const std::string& name, double min) const {
  const std::string s = get(name);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || !(v >= min))
    throw UsageError("--" + name + ": expected a number" + (min > -1e308 ? " >= " + std::to_string(min) : "") +
                     ", found '" + s + "'");
  return v;
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

bool Args::flag_set(const std::string& name) const { return values_.count(name) > 0; }

std::vector<std::string> Args::all(const std::string& name) const {
  const auto v = values_.find(name);
  return v == values_.end() ? std::vector<std::string>{} : v->second;
}

std::string Args::help() const {
  std::ostringstream s;
  s << "usage: " << program_ << " [options]";
  if (!positional_name_.empty()) s << " " << positional_name_ << (positional_max_ != 1 ? "..." : "");
  s << "\n\n" << description_ << "\n";
  if (!positional_name_.empty()) s << "\n  " << positional_name_ << "\n      " << positional_help_ << "\n";
  s << "\noptions:\n";
  for (const auto& name : order_) {
    const Spec& spec = specs_.at(name);
    s << "  --" << name << (spec.takes_value ? " VALUE" : "") << "\n      " << spec.help;
    if (!spec.default_value.empty()) s << " (default: " << spec.default_value << ")";
    if (spec.repeats) s << " (repeatable)";
    s << "\n";
  }
  return s.str();
}

}  // namespace pixel3dmm::cli
