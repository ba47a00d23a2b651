// EpollBackend: the readiness backend. Level-triggered epoll, an eventfd for
// cross-thread wakeups, and the objects that turn readiness into transports,
// listeners and connects (selector_*.cpp in this folder). Not API.
//
// Events are collected by poll() and delivered by dispatch(), which the loop
// calls after running the callbacks that were already ready (asyncio's order).
// Each registration carries a generation; an event collected for an earlier
// owner of the descriptor (closed and reused meanwhile, or handed from a
// connect to its transport) is dropped instead of reaching the new owner.
//
// Thread-safety: wakeup() from any thread; everything else on the loop's thread.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "io_backend.hpp"
#include "selector/datagram_batch.hpp"

namespace tulip::detail {

class EpollBackend final : public IoBackend, private IoWatcher {
 public:
  /// Reads take up to this much at a time, as asyncio's max_size (256 KiB).
  static constexpr std::size_t kReadBufferSize = 256 * 1024;

  explicit EpollBackend(EventLoop& loop);
  ~EpollBackend() override;

  const char* name() const noexcept override { return "epoll"; }
  void poll(int timeout_ms) override;
  void poll_and_dispatch(int timeout_ms) override;
  void dispatch() override { deliver(std::exchange(collected_, 0)); }
  void wakeup() noexcept override;
  void set_interest(int fd, IoWatcher* watcher, std::uint32_t interest) override;
  bool owns(int fd) const noexcept override {
    auto index = static_cast<std::size_t>(fd);
    return fd >= 0 && index < registrations_.size() && registrations_[index].owned;
  }
  std::shared_ptr<Transport> start_stream_transport(StreamSocket socket,
                                                    InlineFunction<void()> on_made) override;
  std::shared_ptr<Transport> start_pipe_transport(PipeEnd pipe,
                                                  InlineFunction<void()> on_made) override;
  std::shared_ptr<DatagramTransport> start_datagram_transport(
      DatagramSocket socket, InlineFunction<void()> on_made) override;
  std::unique_ptr<Listener> make_listener(Server& server, int fd, int backlog) override;
  std::unique_ptr<PendingConnect> start_connect(
      int fd, const SocketAddress& address, InlineFunction<void(std::error_code)> done) override;
  bool start_sendfile(Transport& transport, SendfileJob& job) override;
  void close_socket(int fd) noexcept override;
  int event_fd() const noexcept override { return epoll_fd_; }

  // ---- For this backend's own transports, listeners and connects ----------------

  /// How dispatch reaches a registration's watcher.
  enum class Route : std::uint8_t {
    kWatcher,      // IoWatcher::on_io_event, with the IoEvent bits
    kSocketReads,  // a SelectorSocketTransport on a socket that watches for reads only:
                   // its on_socket_readable, called directly, with no bits to translate
  };
  /// set_interest, saying how the events reach `watcher` (set_interest's own route is kWatcher).
  void set_interest(int fd, IoWatcher* watcher, std::uint32_t interest, Route route);

  EventLoop& loop() const noexcept { return loop_; }
  /// Marks `fd` as owned by one of this backend's objects (see owns()).
  void claim(int fd);
  /// Hands `fd`'s registration to no one, keeping it in the epoll set: the
  /// next set_interest on it is one EPOLL_CTL_MOD instead of a DEL and an ADD
  /// (a connect handing its socket to the transport). Events in between are dropped.
  void park(int fd) noexcept;
  /// The buffers of the datagram transports' recvmmsg/sendmmsg calls.
  DatagramBatch& datagram_batch() {
    if (!datagram_batch_) datagram_batch_ = std::make_unique<DatagramBatch>();
    return *datagram_batch_;
  }
  /// The buffer every Protocol read goes into; data_received borrows it.
  char* read_buffer() {
    // Not zeroed: only what recv() wrote is ever read, and untouched pages cost no memory.
    if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<char[]>(kReadBufferSize);
    return read_buffer_.get();
  }

  /// Test hook: the next `count` epoll_ctl calls that add or change a
  /// registration fail with `error` (ENOMEM, ENOSPC) as the kernel may.
  void inject_ctl_failures(int error, int count) noexcept {
    injected_error_ = error;
    injected_failures_ = count;
  }
  /// Test hook: the next sendfile(2) call of a transport fails with `error`
  /// (EINVAL: the kernel cannot send this file, so the buffered path takes over).
  void inject_sendfile_failure(int error) noexcept { injected_sendfile_error_ = error; }
  /// The failure inject_sendfile_failure asked for, once; 0 if none.
  int take_injected_sendfile_failure() noexcept {
    return std::exchange(injected_sendfile_error_, 0);
  }

 private:
  static constexpr int kMaxEvents = 256;

  // 16 bytes, so that dispatch indexes the table with a shift.
  struct Registration {
    IoWatcher* watcher = nullptr;
    std::uint32_t generation = 0;  // bumped whenever the watcher changes
    std::uint8_t interest = 0;     // IoEvent bits; 0: not in the epoll set
    bool owned = false;            // a transport, listener or connect owns the fd
    Route route = Route::kWatcher;
  };
  static_assert(sizeof(Registration) == 16);

  // The eventfd's own handler: reset the counter so the next wakeup is seen.
  void on_io_event(std::uint32_t) override;
  Registration& registration(int fd);
  int wait(int timeout_ms);
  // wait() with the loop's WaitHooks around the blocking call.
  int wait_with_hooks(int timeout_ms);
  // epoll_wait failed (errno): 0 events for EINTR, else throws.
  [[gnu::cold]] int wait_failed();
  void deliver(int count);
  // What an event carries: the descriptor and its registration's generation.
  static std::uint64_t key_of(std::uint64_t fd, std::uint32_t generation) noexcept {
    return fd | (static_cast<std::uint64_t>(generation) << 32);
  }
  int control(int op, int fd, std::uint32_t interest, std::uint32_t generation);

  EventLoop& loop_;
  int epoll_fd_ = -1;
  int wakeup_fd_ = -1;
  std::vector<Registration> registrations_;  // indexed by fd
  std::unique_ptr<char[]> read_buffer_;
  std::unique_ptr<DatagramBatch> datagram_batch_;
  int collected_ = 0;  // events poll() stored and dispatch() has not delivered
  int injected_error_ = 0;
  int injected_failures_ = 0;
  int injected_sendfile_error_ = 0;
  epoll_event events_[kMaxEvents];
};

}  // namespace tulip::detail
