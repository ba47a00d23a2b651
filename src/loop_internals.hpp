// LoopInternals: the parts of an EventLoop that only tulip's own sources see.
//
// The public EventLoop keeps the hot scheduling state inline (so call_soon can
// be inlined); everything else a loop owns lives here, out of the public header.
//
// Thread-safety: loop thread only.
#pragma once

#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "io_backend.hpp"
#include "resolver.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/handle.hpp"

namespace tulip::detail {

/// Watches one descriptor for add_reader/add_writer and queues the callbacks.
class FdWatcher final : public IoWatcher {
 public:
  FdWatcher(EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}

  void set_reader(Callback callback);
  void set_writer(Callback callback);
  bool clear_reader();
  bool clear_writer();
  bool idle() const noexcept { return !reader_ && !writer_; }

  void on_io_event(std::uint32_t events) override;

 private:
  void update_interest();

  EventLoop& loop_;
  int fd_;
  // Shared so that a queued call keeps the callable alive even if the reader is
  // replaced or removed by the callback itself while it runs.
  std::shared_ptr<Callback> reader_;
  std::shared_ptr<Callback> writer_;
  Handle queued_reader_;
  Handle queued_writer_;
};

class Connector;

struct LoopInternals {
  /// Reads take up to this much at a time, as asyncio's max_size (256 KiB).
  static constexpr std::size_t kReadBufferSize = 256 * 1024;

  LoopInternals(EventLoop& owner, IoBackend& io) : loop(owner), backend(io), resolver(owner) {}

  /// Releases everything the loop holds: servers, connection attempts,
  /// transports (their protocols see connection_lost(ECONNABORTED)), resolver
  /// threads, descriptors and signals. Called by EventLoop::close().
  void shutdown();

  /// The buffer every Protocol read goes into; data_received borrows it.
  char* read_buffer() {
    // Not zeroed: only what recv() wrote is ever read, and untouched pages cost no memory.
    if (!shared_read_buffer) {
      shared_read_buffer = std::make_unique_for_overwrite<char[]>(kReadBufferSize);
    }
    return shared_read_buffer.get();
  }

  EventLoop& loop;
  IoBackend& backend;
  std::unordered_map<int, std::unique_ptr<FdWatcher>> fd_watchers;
  std::unordered_map<int, std::shared_ptr<Callback>> signal_handlers;
  // The registry: every live transport, from start() until connection_lost returned.
  std::unordered_map<BaseTransport*, std::shared_ptr<BaseTransport>> transports;
  // Connection attempts in progress, and servers that are open.
  std::unordered_map<Connector*, std::shared_ptr<Connector>> connectors;
  std::unordered_set<std::shared_ptr<Server>> servers;
  std::unique_ptr<char[]> shared_read_buffer;
  Resolver resolver;
};

/// Signal handling (signal_handlers.cpp).
void install_signal_handler(EventLoop& loop, int signum, Callback callback);
bool uninstall_signal_handler(EventLoop& loop, int signum);

}  // namespace tulip::detail
