// IoBackend: the loop's interface to the kernel's I/O multiplexer. Not API.
//
// The loop core (ready queue, timers, running, stopping) is backend-neutral; it
// only ever asks a backend to wait for and dispatch events (poll) and to wake a
// poll from another thread (wakeup). Readiness watching (watch) is how the
// selector backend drives its transports and how add_reader/add_writer work on
// every backend: a completion-based backend (io_uring) implements it with poll
// operations, while its transports submit reads and writes directly and never
// ask about readiness. Transports, servers and connectors are created by the
// loop through backend-specific code, so the public API bakes in neither model.
//
// Thread-safety: wakeup() from any thread; everything else on the loop's thread.
#pragma once

#include <cstdint>
#include <memory>

namespace tulip::detail {

/// Backend-neutral event bits.
enum IoEvent : std::uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
};

/// Receives readiness events for one descriptor. The backend stores a raw
/// pointer: a watcher must stay alive until it is unwatched and the current
/// poll() has returned (the loop defers frees to guarantee this).
class IoWatcher {
 public:
  /// `events` is a mix of IoEvent bits. An error or hang-up condition is
  /// reported as the watched bits, so the handler finds the cause in its syscall.
  virtual void on_io_event(std::uint32_t events) = 0;

 protected:
  ~IoWatcher() = default;
};

class IoBackend {
 public:
  virtual ~IoBackend() = default;

  virtual const char* name() const noexcept = 0;

  /// Waits up to `timeout_ms` (-1: no limit, 0: do not block) and dispatches
  /// every event that arrived to its watcher before returning.
  virtual void poll(int timeout_ms) = 0;

  /// Makes the current or next poll() return soon. Async-signal-safe and thread-safe.
  virtual void wakeup() noexcept = 0;

  /// Sets what `watcher` wants to hear about `fd` (IoEvent bits). Interest 0
  /// stops watching. Redundant calls cost no system call.
  virtual void set_interest(int fd, IoWatcher* watcher, std::uint32_t interest) = 0;
};

/// The readiness backend: epoll, level-triggered, with an eventfd for wakeups.
std::unique_ptr<IoBackend> make_epoll_backend();

}  // namespace tulip::detail
