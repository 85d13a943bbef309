// JSON files and typed config structs: defaults, unknown keys, type errors, overrides.
#include <fstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/config.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::io;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace cfgtest {
struct FitSection {
  int iters = 500;
  double lr = 0.005;
  std::string name = "default";
  bool verbose = false;
  uint32_t batch = 4;
};
PIXEL3DMM_CONFIG(FitSection, iters, lr, name, verbose, batch)

struct JobConfig {
  FitSection fit;
  int64_t seed = 0;
  std::vector<float> weights{1.0f, 2.0f};
};
PIXEL3DMM_CONFIG(JobConfig, fit, seed, weights)
}  // namespace cfgtest

using cfgtest::JobConfig;

TEST_CASE("config structs keep defaults for missing keys and round trip through JSON", "[io][config]") {
  const JobConfig d = parse_config<JobConfig>(json::parse(R"({"fit": {"lr": 0.1}})"));
  REQUIRE(d.fit.iters == 500);
  REQUIRE(d.fit.lr == 0.1);
  REQUIRE(d.fit.name == "default");
  REQUIRE(d.weights == std::vector<float>{1.0f, 2.0f});

  TempDir dir;
  JobConfig c;
  c.fit.iters = 42;
  c.fit.name = "ünïcode";
  c.seed = -7;
  c.weights = {0.5f};
  save_config(dir.file("job.json"), c);
  const JobConfig r = load_config<JobConfig>(dir.file("job.json"));
  REQUIRE(r.fit.iters == 42);
  REQUIRE(r.fit.name == "ünïcode");
  REQUIRE(r.seed == -7);
  REQUIRE(r.weights == std::vector<float>{0.5f});
  REQUIRE(read_file(dir.file("job.json")).find("\n  \"fit\": {\n") != std::string::npos);  // pretty printed
}

TEST_CASE("unknown config keys are rejected by dotted name with the known keys", "[io][config][corrupt]") {
  require_throws_with<ValueError>([] { parse_config<JobConfig>(json::parse(R"({"sead": 1})")); },
                                  {"unknown key 'sead'", "did you mean 'seed'", "known keys (JobConfig): fit, seed, weights"});
  require_throws_with<ValueError>(
      [] { parse_config<JobConfig>(json::parse(R"({"fit": {"iter": 1}})"), "job.json"); },
      {"job.json: unknown key 'fit.iter'", "did you mean 'iters'", "known keys of 'fit' (FitSection): iters, lr"});
  require_throws_with<ValueError>([] { parse_config<JobConfig>(json::parse(R"({"fit": {"zzzzzz": 1}})")); },
                                  {"unknown key 'fit.zzzzzz'; known keys of 'fit'"});
  require_throws_with<ValueError>([] { parse_config<JobConfig>(json::parse(R"({"fit": 3})")); },
                                  {"key 'fit': expected an object (FitSection), found number 3"});
}

TEST_CASE("type mismatches name the key and what was found", "[io][config][corrupt]") {
  auto parse = [](const char* text) { return parse_config<JobConfig>(json::parse(text)); };
  require_throws_with<ValueError>([&] { parse(R"({"fit": {"iters": "many"}})"); },
                                  {"key 'fit.iters'", "expected an integer", "found string \"many\""});
  require_throws_with<ValueError>([&] { parse(R"({"fit": {"iters": 2.5}})"); },
                                  {"key 'fit.iters'", "found number 2.5"});
  REQUIRE(parse(R"({"fit": {"iters": 800.0}})").fit.iters == 800);  // a whole number is an integer
  require_throws_with<ValueError>([&] { parse(R"({"fit": {"batch": -1}})"); },
                                  {"key 'fit.batch'", "non-negative integer"});
  require_throws_with<ValueError>([&] { parse(R"({"fit": {"verbose": 1}})"); },
                                  {"key 'fit.verbose'", "expected true or false"});
  require_throws_with<ValueError>([&] { parse(R"({"fit": {"lr": "fast"}})"); }, {"key 'fit.lr'", "expected a number"});
  require_throws_with<ValueError>([&] { parse(R"({"fit": {"name": 5}})"); }, {"key 'fit.name'", "expected a string"});
  require_throws_with<ValueError>([&] { parse(R"({"seed": 1e30})"); }, {"key 'seed'", "in range"});
  require_throws_with<ValueError>([&] { parse(R"({"weights": [1, "x"]})"); }, {"key 'weights'", "number"});
}

TEST_CASE("overrides set nested values, parse JSON values and fall back to strings", "[io][config]") {
  json j = json::parse(R"({"fit": {"iters": 500}, "tag": 1})");
  apply_overrides(j, {"fit.iters=800", "fit.name=run 7", "fit.lr=1e-3", "fit.verbose=true", "weights=[3, 4]",
                      "new.deep.key=\"quoted\"", "tag={\"a\": 1}", " seed = 9"});
  REQUIRE(j["fit"]["iters"] == 800);
  REQUIRE(j["fit"]["name"] == "run 7");
  REQUIRE(j["fit"]["lr"] == 1e-3);
  REQUIRE(j["fit"]["verbose"] == true);
  REQUIRE(j["weights"] == json::array({3, 4}));
  REQUIRE(j["new"]["deep"]["key"] == "quoted");
  REQUIRE(j["tag"]["a"] == 1);
  REQUIRE(j["seed"] == 9);

  require_throws_with<ValueError>([&] { apply_overrides(j, {"fit.iters"}); }, {"override 'fit.iters'", "key=value"});
  require_throws_with<ValueError>([&] { apply_overrides(j, {"=3"}); }, {"override '=3'"});
  require_throws_with<ValueError>([&] { apply_overrides(j, {"fit..iters=3"}); }, {"empty key segment"});
  require_throws_with<ValueError>([&] { apply_overrides(j, {"seed.x=3"}); },
                                  {"override 'seed.x=3'", "'seed' is number 9, not an object"});

  // Overrides go through the typed parse: a typo or wrong type in --set is caught by name.
  TempDir dir;
  write_json(dir.file("c.json"), json::parse(R"({"fit": {"iters": 10}})"));
  REQUIRE(load_config<JobConfig>(dir.file("c.json"), {"fit.iters=20"}).fit.iters == 20);
  require_throws_with<ValueError>([&] { load_config<JobConfig>(dir.file("c.json"), {"fit.itres=20"}); },
                                  {"c.json", "unknown key 'fit.itres'", "did you mean 'iters'"});
  require_throws_with<ValueError>([&] { load_config<JobConfig>(dir.file("c.json"), {"fit.iters=lots"}); },
                                  {"c.json", "key 'fit.iters'", "found string \"lots\""});
}

TEST_CASE("read_json allows comments and names line and column of syntax errors", "[io][config][corrupt]") {
  TempDir dir;
  std::ofstream(dir.file("ok.json")) << "// a comment\n{\n  \"a\": 1, /* inline */ \"b\": [1, 2]\n}\n";
  REQUIRE(read_json(dir.file("ok.json"))["b"][1] == 2);

  std::ofstream(dir.file("bad.json")) << "{\n  \"a\": 1,\n  \"b\": tru\n}\n";
  require_throws_with<FormatError>([&] { read_json(dir.file("bad.json")); }, {"bad.json:3:", "invalid JSON"});
  std::ofstream(dir.file("cut.json")) << "{\"a\": [1, 2";
  require_throws_with<FormatError>([&] { read_json(dir.file("cut.json")); }, {"cut.json:1:", "invalid JSON"});
  require_throws_with<FileNotFound>([&] { read_json(dir.file("none.json")); }, {"none.json", "no such file"});
  require_throws_with<Error>([&] { write_json(dir.file("no/dir/x.json"), json::object()); }, {"x.json"});
}
