// Which I/O backend a loop runs on: EventLoopOptions::backend, then the
// TULIP_BACKEND environment variable, then what the kernel allows.
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "io_backend.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"
#include "tulip/loop_options.hpp"

#if TULIP_WITH_URING
#include <liburing.h>

#include "uring/uring_backend.hpp"
#endif

namespace tulip {
namespace {

#if TULIP_WITH_URING
// Why io_uring cannot be used here: 0 if it can, else the errno of a probing
// io_uring_setup (EPERM: the io_uring_disabled sysctl or a seccomp filter;
// ENOSYS: a kernel without it or a container hiding it). Asked once per process.
int uring_setup_error() noexcept {
  static const int error = [] {
    io_uring ring;
    int result = io_uring_queue_init(2, &ring, 0);
    if (result == 0) io_uring_queue_exit(&ring);
    return -result;
  }();
  return error;
}
#endif

std::string unavailable_reason() {
#if TULIP_WITH_URING
  return std::string("the kernel refuses io_uring_setup (") + std::strerror(uring_setup_error()) +
         "): disabled by the io_uring_disabled sysctl, a seccomp filter or a container, or a "
         "kernel without it";
#else
  return "this build of tulip has no io_uring backend (configured without liburing)";
#endif
}

}  // namespace

BackendKind parse_backend_kind(std::string_view name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "epoll") return BackendKind::kEpoll;
  if (name == "io_uring") return BackendKind::kIoUring;
  throw std::invalid_argument("unknown I/O backend '" + std::string(name) +
                              "' (expected auto, epoll or io_uring)");
}

bool io_uring_available() noexcept {
#if TULIP_WITH_URING
  return uring_setup_error() == 0;
#else
  return false;
#endif
}

namespace detail {

BackendKind resolve_backend_kind(BackendKind kind) {
  if (kind == BackendKind::kAuto) {
    const char* variable = std::getenv("TULIP_BACKEND");
    if (variable != nullptr && *variable != '\0') {
      try {
        kind = parse_backend_kind(variable);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("TULIP_BACKEND: ") + e.what());
      }
    }
  }
  if (kind == BackendKind::kIoUring && !io_uring_available()) {
    throw RuntimeError("the io_uring backend is unavailable: " + unavailable_reason());
  }
  if (kind == BackendKind::kAuto) {
    kind = io_uring_available() ? BackendKind::kIoUring : BackendKind::kEpoll;
    if (log_enabled(LogLevel::kDebug)) {
      log(LogLevel::kDebug, kind == BackendKind::kIoUring
                                ? std::string("event loop backend: io_uring (auto)")
                                : "event loop backend: epoll (auto; io_uring unavailable: " +
                                      unavailable_reason() + ")");
    }
  }
  return kind;
}

std::unique_ptr<IoBackend> make_backend(EventLoop& loop, BackendKind kind,
                                        const EventLoopOptions& options) {
#if TULIP_WITH_URING
  if (kind == BackendKind::kIoUring) return make_uring_backend(loop, options);
#endif
  (void)kind;
  (void)options;  // the epoll backend has no options
  return make_epoll_backend(loop);
}

}  // namespace detail
}  // namespace tulip
