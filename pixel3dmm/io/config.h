#pragma once
/// JSON configs: typed option structs with defaults, unknown keys rejected by name, `--set a.b=value` overrides.
///
/// A config struct declares its fields once:
///   struct FitConfig { int iters = 500; double lr = 0.005; };
///   PIXEL3DMM_CONFIG(FitConfig, iters, lr)
/// and gets to_json/from_json where a missing key keeps its default and an unknown key is an error
/// ("fit.json: unknown key 'iter' in 'fit' (known: iters, lr)").

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pixel3dmm::io {

using json = nlohmann::json;

/// Reads a JSON file (comments allowed). Errors name the file, line and column.
json read_json(const std::string& path);

/// Writes pretty-printed JSON atomically.
void write_json(const std::string& path, const json& value);

/// Applies "a.b.c=value" overrides in order. `value` is parsed as JSON when it is valid JSON (numbers, true,
/// [1,2], {"k":1}, "quoted") and taken as a plain string otherwise. Throws ValueError for a malformed override or a
/// path through a non-object; a key that does not exist yet is created (the typed parse then rejects unknown keys).
void apply_overrides(json& config, const std::vector<std::string>& overrides);

namespace detail {
/// Throws ValueError naming the first key of `j` not in `known` (and `where`, the dotted path of `j`).
void reject_unknown_keys(const json& j, const std::vector<std::string>& known, const char* type_name);
}  // namespace detail

}  // namespace pixel3dmm::io

#define PIXEL3DMM_CONFIG_TO(field) j[#field] = t.field;
#define PIXEL3DMM_CONFIG_FROM(field)                                                                           \
  if (j.contains(#field)) {                                                                                    \
    try {                                                                                                      \
      j.at(#field).get_to(t.field);                                                                            \
    } catch (const nlohmann::json::exception& e) {                                                             \
      throw ::pixel3dmm::ValueError(std::string("config key '" #field "': ") + e.what());                      \
    } catch (const ::pixel3dmm::ValueError& e) {                                                               \
      throw ::pixel3dmm::ValueError(std::string("in '" #field "': ") + e.what());                              \
    }                                                                                                          \
  }
#define PIXEL3DMM_CONFIG_NAME(field) #field,

/// Defines to_json/from_json for a config struct (in the struct's namespace). from_json keeps defaults for
/// missing keys and rejects unknown ones.
#define PIXEL3DMM_CONFIG(Type, ...)                                                                            \
  inline void to_json(nlohmann::json& j, const Type& t) {                                                      \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(PIXEL3DMM_CONFIG_TO, __VA_ARGS__))                               \
  }                                                                                                            \
  inline void from_json(const nlohmann::json& j, Type& t) {                                                    \
    ::pixel3dmm::io::detail::reject_unknown_keys(                                                              \
        j, {NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(PIXEL3DMM_CONFIG_NAME, __VA_ARGS__))}, #Type);            \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(PIXEL3DMM_CONFIG_FROM, __VA_ARGS__))                             \
  }
