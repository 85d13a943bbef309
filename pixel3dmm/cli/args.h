#pragma once
/// A small, strict argument parser for the subcommands: `--name value`, `--name=value`, boolean `--flag`,
/// repeated `--set a.b=value`, positional arguments, and a generated `--help`.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pixel3dmm::cli {

class Args {
 public:
  Args(std::string program, std::string description);

  /// Declares an option taking a value (`default_value` shown in --help; empty = none).
  Args& option(const std::string& name, const std::string& help, const std::string& default_value = "");
  /// Declares an option that may be given several times (e.g. --set).
  Args& repeated(const std::string& name, const std::string& help);
  /// Declares a boolean flag.
  Args& flag(const std::string& name, const std::string& help);
  /// Declares positional arguments (`min` required, `max` = -1 for unbounded).
  Args& positional(const std::string& name, const std::string& help, int min = 0, int max = -1);

  /// Parses; returns false after printing --help (caller exits 0). Throws UsageError on bad input.
  bool parse(const std::vector<std::string>& args);

  std::string get(const std::string& name) const;  ///< value or declared default
  /// The value as an integer / number no smaller than `min`; throws UsageError naming the option otherwise.
  int64_t get_int(const std::string& name, int64_t min = INT64_MIN) const;
  double get_double(const std::string& name, double min = -1e308) const;
  bool has(const std::string& name) const;          ///< given explicitly
  bool flag_set(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;  ///< repeated option values
  const std::vector<std::string>& positionals() const { return positionals_; }
  std::string help() const;

 private:
  struct Spec {
    std::string help, default_value;
    bool takes_value = true, repeats = false;
  };
  std::string program_, description_, positional_name_, positional_help_;
  int positional_min_ = 0, positional_max_ = 0;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
};

/// Thrown for a bad command line; main prints it with the usage and exits with kUsage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace pixel3dmm::cli
