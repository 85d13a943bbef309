#pragma once
/// A one-line progress bar on stderr for long work: redrawn in place on a terminal, a line every 10% otherwise
/// (so logs of CI and batch jobs stay short).

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace pixel3dmm::cli {

class Progress {
 public:
  Progress(std::string label, int64_t total)
      : label_(std::move(label)), total_(total), tty_(::isatty(STDERR_FILENO) != 0),
        start_(std::chrono::steady_clock::now()) {}

  /// Reports `done` of `total` units, with a short status text (e.g. the current loss).
  void update(int64_t done, const std::string& status = "") {
    const int64_t percent = total_ > 0 ? 100 * done / total_ : 100;
    if (!tty_ && percent / 10 == last_decile_ && done != total_) return;
    last_decile_ = percent / 10;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double eta = done > 0 ? elapsed * double(total_ - done) / double(done) : 0.0;
    const int width = 24, filled = static_cast<int>(width * percent / 100);
    std::fprintf(stderr, "%s%-10s [%s%s] %3lld%% %lld/%lld %5.1fs eta %5.1fs %s%s", tty_ ? "\r" : "", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 static_cast<long long>(percent), static_cast<long long>(done), static_cast<long long>(total_),
                 elapsed, eta, status.c_str(), tty_ ? "\033[K" : "\n");
    if (tty_ && done >= total_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  int64_t total_;
  bool tty_;
  int64_t last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace pixel3dmm::cli
