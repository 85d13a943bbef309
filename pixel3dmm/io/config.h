#pragma once
/// JSON configs: typed option structs with defaults, unknown keys rejected by name, `--set a.b=value` overrides.
///
/// A config struct declares its fields once:
///   struct FitConfig { int iters = 500; double lr = 0.005; };
///   PIXEL3DMM_CONFIG(FitConfig, iters, lr)
/// and gets to_json/from_json where a missing key keeps its default, an unknown key is an error naming its dotted
/// path and the known keys ("fit.json: unknown key 'fit.iter' (did you mean 'iters'?); known keys of 'fit'
/// (FitConfig): iters, lr"), and a value of the wrong type names its key ("key 'fit.iters': expected an integer,
/// found string \"many\""). Nested config structs work as fields; integers must be whole JSON numbers.
///
///   FitConfig c = pixel3dmm::io::load_config<FitConfig>("fit.json", {"iters=800"});

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::io {

using json = nlohmann::json;

/// Reads a JSON file (// and /* */ comments allowed). Throws FileNotFound for a missing file and FormatError
/// "<path>:<line>:<column>: invalid JSON: <what>" for a syntax error.
json read_json(const std::string& path);

/// Writes pretty-printed JSON (2-space indent, trailing newline) atomically.
void write_json(const std::string& path, const json& value);

/// Applies "a.b.c=value" overrides in order. `value` is parsed as JSON when it is valid JSON (numbers, true,
/// [1,2], {"k":1}, "quoted") and taken as a plain string otherwise. Throws ValueError for a malformed override or a
/// path through a non-object; a key that does not exist yet is created (the typed parse then rejects unknown keys).
void apply_overrides(json& config, const std::vector<std::string>& overrides);

namespace detail {

using ::pixel3dmm::detail::concat;

/// A config error at a dotted key path. Each enclosing config struct's from_json prepends its field name, so the
/// message names the full path ("fit.iters") however deep the struct nesting.
class ConfigKeyError : public ValueError {
 public:
  /// `unknown_key`: the last path element is not a field; `detail` then lists the known keys.
  ConfigKeyError(std::vector<std::string> path, std::string detail, bool unknown_key = false);
  /// The same error one level up, below `field`.
  ConfigKeyError prefixed(const std::string& field) const;
  const std::vector<std::string>& path() const { return path_; }

 private:
  std::vector<std::string> path_;
  std::string detail_;
  bool unknown_key_;
};

/// "string \"abc\"", "number 1.5", "object": a JSON value for an error message (long values shortened).
std::string describe_json(const json& j);

/// Throws ConfigKeyError naming the first key of `j` not in `known` (with a did-you-mean hint), or when `j` is not
/// an object.
void reject_unknown_keys(const json& j, const std::vector<std::string>& known, const char* type_name);

/// Refuses JSON values that nlohmann would convert lossily: a fractional or out-of-range number for an integer
/// field, a number for a bool, a non-number for a float, a non-string for a string.
template <typename T>
void check_json_type(const json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw ConfigKeyError({}, "expected true or false, found " + describe_json(v));
  } else if constexpr (std::is_integral_v<T>) {
    bool ok = false;
    if (v.is_number_unsigned()) {
      ok = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    } else if (v.is_number_integer()) {
      const int64_t x = v.get<int64_t>();
      ok = x >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           (x < 0 || static_cast<uint64_t>(x) <= static_cast<uint64_t>(std::numeric_limits<T>::max()));
    } else if (v.is_number_float()) {
      const double x = v.get<double>();
      ok = std::floor(x) == x && x >= static_cast<double>(std::numeric_limits<T>::min()) &&
           x <= static_cast<double>(std::numeric_limits<T>::max());
    }
    if (!ok) {
      throw ConfigKeyError({}, std::string("expected ") + (std::is_signed_v<T> ? "an integer" : "a non-negative integer") +
                                   " in range, found " + describe_json(v));
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw ConfigKeyError({}, "expected a number, found " + describe_json(v));
    if (std::abs(v.get<double>()) > static_cast<double>(std::numeric_limits<T>::max())) {
      throw ConfigKeyError({}, "number out of range for " + std::string(sizeof(T) == 4 ? "float" : "double") +
                                   ", found " + describe_json(v));
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw ConfigKeyError({}, "expected a string, found " + describe_json(v));
  }
}

/// Converts one field, attaching the field's name to any error from below.
template <typename T>
void get_field(const json& v, T& out, const char* field) {
  try {
    check_json_type<T>(v);
    v.get_to(out);
  } catch (const ConfigKeyError& e) {
    throw e.prefixed(field);
  } catch (const nlohmann::json::exception& e) {
    std::string msg = e.what();  // "[json.exception.type_error.302] type must be number, but is string"
    const size_t bracket = msg.find("] ");
    if (bracket != std::string::npos) msg = msg.substr(bracket + 2);
    throw ConfigKeyError({field}, msg);
  } catch (const ValueError& e) {
    throw ConfigKeyError({field}, e.what());
  }
}

}  // namespace detail

/// Parses `j` into a PIXEL3DMM_CONFIG struct (missing keys keep their defaults). Errors are prefixed by `where`
/// (e.g. the file name) when it is not empty.
template <typename T>
T parse_config(const json& j, const std::string& where = "") {
  T t{};
  try {
    j.get_to(t);
  } catch (const ValueError& e) {
    if (where.empty()) throw;
    throw ValueError(where + ": " + e.what());
  }
  return t;
}

/// read_json + apply_overrides + parse_config: how a job reads its config file and `--set` flags.
template <typename T>
T load_config(const std::string& path, const std::vector<std::string>& overrides = {}) {
  json j = read_json(path);
  apply_overrides(j, overrides);
  return parse_config<T>(j, path);
}

/// Writes every field of a config struct (defaults included) as JSON, atomically.
template <typename T>
void save_config(const std::string& path, const T& config) {
  json j;
  to_json(j, config);
  write_json(path, j);
}

}  // namespace pixel3dmm::io

#define PIXEL3DMM_CONFIG_TO(field) j[#field] = t.field;
#define PIXEL3DMM_CONFIG_FROM(field) \
  if (auto it = j.find(#field); it != j.end()) ::pixel3dmm::io::detail::get_field(*it, t.field, #field);
#define PIXEL3DMM_CONFIG_NAME(field) #field,

/// Defines to_json/from_json for a config struct (in the struct's namespace). from_json keeps defaults for
/// missing keys and rejects unknown ones; errors name the dotted key path.
#define PIXEL3DMM_CONFIG(Type, ...)                                                                            \
  inline void to_json(nlohmann::json& j, const Type& t) {                                                      \
    j = nlohmann::json::object();                                                                              \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(PIXEL3DMM_CONFIG_TO, __VA_ARGS__))                               \
  }                                                                                                            \
  inline void from_json(const nlohmann::json& j, Type& t) {                                                    \
    ::pixel3dmm::io::detail::reject_unknown_keys(                                                              \
        j, {NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(PIXEL3DMM_CONFIG_NAME, __VA_ARGS__))}, #Type);            \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(PIXEL3DMM_CONFIG_FROM, __VA_ARGS__))                             \
  }
