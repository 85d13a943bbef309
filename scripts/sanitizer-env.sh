# Sourced by scripts/test-asan.sh and scripts/fuzz.sh: the runtime options of the ASan + UBSan build.
# LibTorch, OpenCV and dlib are not instrumented; tests/sanitizers/*.supp lists the few reports they cause, each
# with its reason (never a frame of pixel3dmm's own code). docs/reliability.md explains each option.
_supp="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/sanitizers"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_container_overflow=0:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=0:abort_on_error=1:symbolize=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$_supp/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-suppressions=$_supp/ubsan.supp:print_stacktrace=1:halt_on_error=1}"
unset _supp
