// JSON files and config structs.
#include "pixel3dmm/io/config.h"

#include <algorithm>

#include "pixel3dmm/core/atomic_file.h"

namespace pixel3dmm::io {

namespace {

std::string dotted(const std::vector<std::string>& path, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (i ? "." : "") + path[i];
  return s;
}

/// Levenshtein distance, for "did you mean" hints on short key names.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::string config_message(const std::vector<std::string>& path, const std::string& detail, bool unknown_key) {
  if (unknown_key && !path.empty()) {
    // detail = "<hint>\n(<Type>): <known keys>"; the known keys belong to the key's parent.
    const size_t nl = detail.find('\n');
    const std::string hint = detail.substr(0, nl);
    const std::string known = nl == std::string::npos ? "" : detail.substr(nl + 1);
    const std::string parent = dotted(path, path.size() - 1);
    return detail::concat("unknown key '", dotted(path, path.size()), "'", hint, "; known keys",
                          parent.empty() ? "" : " of '" + parent + "'", " ", known);
  }
  if (path.empty()) return detail;
  return detail::concat("key '", dotted(path, path.size()), "': ", detail);
}

}  // namespace

namespace detail {

ConfigKeyError::ConfigKeyError(std::vector<std::string> path, std::string detail_text, bool unknown_key)
    : ValueError(config_message(path, detail_text, unknown_key)),
      path_(std::move(path)),
      detail_(std::move(detail_text)),
      unknown_key_(unknown_key) {}

ConfigKeyError ConfigKeyError::prefixed(const std::string& field) const {
  std::vector<std::string> p;
  p.reserve(path_.size() + 1);
  p.push_back(field);
  p.insert(p.end(), path_.begin(), path_.end());
  return ConfigKeyError(std::move(p), detail_, unknown_key_);
}

std::string describe_json(const json& j) {
  if (j.is_object() || j.is_array()) return j.type_name();
  std::string text = j.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  if (j.is_null()) return "null";
  if (j.is_boolean()) return text;
  return std::string(j.type_name()) + " " + text;
}

void reject_unknown_keys(const json& j, const std::vector<std::string>& known, const char* type_name) {
  if (!j.is_object()) {
    throw ConfigKeyError({}, concat("expected an object (", type_name, "), found ", describe_json(j)));
  }
  for (const auto& item : j.items()) {
    if (std::find(known.begin(), known.end(), item.key()) != known.end()) continue;
    // detail = "<hint>\n(<Type>): a, b, c": the hint follows the key, the list follows "known keys of '...'".
    std::string hint, best;
    size_t best_d = 3;  // suggest only close matches
    for (const auto& k : known) {
      const size_t d = edit_distance(item.key(), k);
      if (d < best_d) best_d = d, best = k;
    }
    if (!best.empty()) hint = " (did you mean '" + best + "'?)";
    std::string list;
    for (size_t i = 0; i < known.size(); ++i) list += (i ? ", " : "") + known[i];
    throw ConfigKeyError({item.key()}, concat(hint, "\n(", type_name, "): ", list), /*unknown_key=*/true);
  }
}

}  // namespace detail

json read_json(const std::string& path) {
  const std::string text = read_file(path);
  // Configs are a few levels deep; a file of 100000 '[' would only make every recursive walk over it (dump,
  // comparison, the typed parse) a stack overflow risk.
  constexpr int kMaxDepth = 64;
  auto limit_depth = [&](int depth, json::parse_event_t event, json&) {
    if (depth > kMaxDepth &&
        (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)) {
      throw FormatError(detail::concat(path, ": JSON nested deeper than ", kMaxDepth, " levels"));
    }
    return true;
  };
  try {
    return json::parse(text, limit_depth, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based offset of the offending character.
    const size_t end = std::min(text.size(), e.byte > 0 ? e.byte - 1 : 0);
    size_t line = 1, col = 1;
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string msg = e.what();  // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax ..."
    const size_t bracket = msg.find("] ");
    if (bracket != std::string::npos) msg = msg.substr(bracket + 2);
    const size_t colon = msg.find(": ");
    if (msg.rfind("parse error", 0) == 0 && colon != std::string::npos) msg = msg.substr(colon + 2);
    throw FormatError(detail::concat(path, ":", line, ":", col, ": invalid JSON: ", msg));
  } catch (const json::exception& e) {
    // A number beyond double's range (out_of_range 406, found by fuzz_config): "number overflow parsing '1e999'".
    std::string msg = e.what();
    const size_t bracket = msg.find("] ");
    if (bracket != std::string::npos) msg = msg.substr(bracket + 2);
    throw FormatError(detail::concat(path, ": invalid JSON: ", msg));
  }
}

void write_json(const std::string& path, const json& value) {
  std::string text;
  try {
    text = value.dump(2) + "\n";
  } catch (const json::exception& e) {
    throw ValueError(detail::concat(path, ": cannot write JSON: ", e.what()));
  }
  write_file_atomically(path, text);
}

void apply_overrides(json& config, const std::vector<std::string>& overrides) {
  if (config.is_null()) config = json::object();
  PIXEL3DMM_CHECK(config.is_object(), "apply_overrides: the config must be a JSON object, found ",
                  detail::describe_json(config));
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    const std::string key = trim(o.substr(0, eq));
    PIXEL3DMM_CHECK(eq != std::string::npos && !key.empty(), "override '", o,
                    "': expected key=value, e.g. fit.iters=800");
    std::vector<std::string> path;
    for (size_t start = 0;;) {
      const size_t dot = key.find('.', start);
      path.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      PIXEL3DMM_CHECK(!path.back().empty(), "override '", o, "': empty key segment in '", key, "'");
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    json* node = &config;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      json& child = (*node)[path[i]];
      if (child.is_null()) child = json::object();
      PIXEL3DMM_CHECK(child.is_object(), "override '", o, "': '", dotted(path, i + 1), "' is ",
                      detail::describe_json(child), ", not an object");
      node = &child;
    }
    const std::string text = o.substr(eq + 1);
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = trim(text);  // not JSON: a plain string
    (*node)[path.back()] = std::move(value);
  }
}

}  // namespace pixel3dmm::io
