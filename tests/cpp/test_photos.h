#pragma once
// The real photos the tests use: Debian's dlib example faces (libdlib19.1) with dlib's 68-point model
// (libdlib-data), both installed by scripts/install-deps.sh.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "pixel3dmm/preprocess/face_detector.h"

namespace pixel3dmm::test {

inline const std::string kDlibFaces = "/usr/share/doc/libdlib19.1/examples/faces/";

/// True when `photo` (default: one of the example faces) and the landmark model exist; otherwise a Catch2 warning
/// that says which package provides them, and false (the caller returns: the test is skipped, not failed).
inline bool have_dlib_photos(const std::string& photo = kDlibFaces + "2008_001322.jpg") {
  std::error_code ec;
  const bool ok = std::filesystem::exists(photo, ec) &&
                  std::filesystem::exists(preprocess::default_landmark_model_path(), ec);
  if (!ok)
    WARN("SKIPPED: " << photo << " (Debian package libdlib19.1) or the landmark model ("
                     << preprocess::default_landmark_model_path() << ", libdlib-data) is missing");
  return ok;
}

}  // namespace pixel3dmm::test
