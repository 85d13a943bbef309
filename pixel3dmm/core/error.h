#pragma once
/// Errors of pixel3dmm: one exception family carrying what failed, where (file, key) and expected vs found.
/// The Python bindings translate `ValueError` and `FormatError` to Python's ValueError, `FileNotFound` to
/// FileNotFoundError and every other `Error` to RuntimeError.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace pixel3dmm {

/// Base of every exception pixel3dmm throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A bad argument: wrong shape, dtype, range or an inconsistent option.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A file that is not there or cannot be opened.
class FileNotFound : public Error {
 public:
  using Error::Error;
};

/// A file that is there but is not what its format says it must be (truncated, corrupt, wrong layout).
class FormatError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// No face was found in an input image (the message names the image). A ValueError for Python; the command line
/// exits with its own code for it.
class NoFaceFound : public ValueError {
 public:
  using ValueError::ValueError;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream s;
  (s << ... << std::forward<Args>(args));
  return s.str();
}
}  // namespace detail

}  // namespace pixel3dmm

/// Throws pixel3dmm::ValueError with the streamed message when `cond` is false.
#define PIXEL3DMM_CHECK(cond, ...) \
  do {                             \
    if (!(cond)) throw ::pixel3dmm::ValueError(::pixel3dmm::detail::concat(__VA_ARGS__)); \
  } while (0)

/// Throws pixel3dmm::FormatError "<file>: <message>" when `cond` is false.
#define PIXEL3DMM_CHECK_FORMAT(cond, file, ...) \
  do {                                          \
    if (!(cond))                                \
      throw ::pixel3dmm::FormatError(::pixel3dmm::detail::concat(file, ": ", __VA_ARGS__)); \
  } while (0)

/// Throws the given exception type with the streamed message when `cond` is false.
#define PIXEL3DMM_CHECK_T(type, cond, ...) \
  do {                                     \
    if (!(cond)) throw type(::pixel3dmm::detail::concat(__VA_ARGS__)); \
  } while (0)
