// FdWatcher: add_reader / add_writer on one plain descriptor. Not API.
//
// The backend reports readiness to the watcher, which calls the reader or
// writer callback at once: dispatch already runs after the callbacks that were
// ready before the poll, which is where asyncio runs I/O handles.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <memory>

#include "io_backend.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

class FdWatcher final : public IoWatcher, public std::enable_shared_from_this<FdWatcher> {
 public:
  FdWatcher(EventLoop& loop, IoBackend& backend, int fd)
      : loop_(loop), backend_(backend), fd_(fd) {}

  void set_reader(Callback callback);
  void set_writer(Callback callback);
  bool clear_reader();
  bool clear_writer();
  bool idle() const noexcept { return !reader_ && !writer_; }
  /// Which reader (writer) is installed: bumped by every set_reader
  /// (set_writer), so that whoever installed one can tell whether it is still theirs.
  std::uint64_t reader_generation() const noexcept { return reader_ ? reader_generation_ : 0; }
  std::uint64_t writer_generation() const noexcept { return writer_ ? writer_generation_ : 0; }

  void on_io_event(std::uint32_t events) override;

 private:
  void update_interest();

  EventLoop& loop_;
  IoBackend& backend_;
  int fd_;
  // Shared so that a running call keeps the callable alive even if the
  // callback replaces or removes itself.
  std::shared_ptr<Callback> reader_;
  std::shared_ptr<Callback> writer_;
  std::uint64_t reader_generation_ = 0;
  std::uint64_t writer_generation_ = 0;
};

/// The generation of `fd`'s reader (`write`: writer) on `loop`; 0 if there is none.
std::uint64_t watch_generation(EventLoop& loop, int fd, bool write) noexcept;

/// Removes `fd`'s reader (writer) if it is still the one of `generation`.
void remove_watch_if_current(EventLoop& loop, int fd, bool write, std::uint64_t generation);

}  // namespace tulip::detail
