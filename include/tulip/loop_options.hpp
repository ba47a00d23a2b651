// EventLoopOptions: how an EventLoop is made: which I/O backend it runs on, and
// the io_uring backend's zero-copy sends.
//
// Two backends exist (docs/backends.md):
//  * epoll: readiness-based I/O, the one every Linux kernel tulip supports has;
//  * io_uring: completion-based I/O (Linux >= 6.1 and liburing at build time):
//    sockets' bytes, accepts and connects are submitted to the kernel's ring.
// `auto` takes io_uring when this build has it and the kernel allows it (no
// io_uring_disabled sysctl, seccomp filter or container refusing it), epoll
// otherwise. The TULIP_BACKEND environment variable (auto, epoll, io_uring)
// chooses for loops made with `auto`, so a program can be switched without
// being rebuilt. Behaviour through the API is the same on both, except where
// docs/backends.md says otherwise.
//
// Thread-safety: plain data.
#pragma once

#include <cstddef>
#include <string_view>

#include "tulip/export.hpp"

namespace tulip {

/// Which I/O backend an EventLoop runs on.
enum class BackendKind {
  kAuto,     ///< TULIP_BACKEND if set, else io_uring when available, else epoll
  kEpoll,    ///< readiness-based: epoll
  kIoUring,  ///< completion-based: io_uring; making the loop throws if unavailable
};

/// How an EventLoop is made.
struct EventLoopOptions {
  /// The I/O backend (see BackendKind).
  BackendKind backend = BackendKind::kAuto;
  /// io_uring backend only (no effect on epoll): a send request of a TCP
  /// stream transport carrying at least this many bytes is a zero-copy send
  /// (IORING_OP_SEND_ZC: the kernel sends from the transport's memory, which
  /// it holds until its notification), smaller ones copy as send() does. 0,
  /// the default, never sends zero-copy: on loopback, the only network where
  /// this was measured, the kernel copies the bytes anyway and zero-copy only
  /// adds its notification (bench/README.md, "io_uring"). Over a NIC it pays
  /// from about 3 KB on kernels >= 6.10, by the kernel developers' figures;
  /// a transport stops sending zero-copy once the kernel reports that it
  /// copied (loopback, or a device without scatter-gather). See
  /// docs/backends.md, "Zero-copy sends".
  std::size_t zero_copy_send_threshold = 0;
};

/// Parses a backend name as TULIP_BACKEND and the tools' --backend take it:
/// "auto", "epoll" or "io_uring". Throws std::invalid_argument naming the
/// choices for anything else.
TULIP_API BackendKind parse_backend_kind(std::string_view name);

/// True if this build of tulip has the io_uring backend and the kernel lets
/// this process set up a ring now.
TULIP_API bool io_uring_available() noexcept;

}  // namespace tulip
