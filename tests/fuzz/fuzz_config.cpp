// libFuzzer target: JSON config files: io::read_json (comments, nesting), then the typed parses of a fit config
// and a training recipe, and a `--set` override taken from a first-line comment.
#include "fuzz_util.h"
#include "pixel3dmm/fit/fit_config.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/train/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("config.json", data, size);
  fuzz::expect_ok_or_error([&] {
    pixel3dmm::io::json j = pixel3dmm::io::read_json(path);
    fuzz::expect_ok_or_error([&] { (void)pixel3dmm::io::parse_config<pixel3dmm::fit::FitConfig>(j, path); });
    fuzz::expect_ok_or_error([&] { (void)pixel3dmm::train::TrainingRecipe::from_json(j, fuzz::scratch_dir(), path); });
    // A first line "//a.b=value" (a JSON comment) is also applied as a `--set` override.
    const std::string_view text = fuzz::view(data, size);
    if (text.substr(0, 2) == "//") {
      pixel3dmm::io::apply_overrides(j, {std::string(text.substr(2, text.find('\n') - 2))});
    }
  });
  return 0;
}
