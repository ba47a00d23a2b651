// FdWatcher: add_reader / add_writer on one plain descriptor. Not API.
//
// The backend reports readiness to the watcher, which calls the reader or
// writer callback at once: dispatch already runs after the callbacks that were
// ready before the poll, which is where asyncio runs I/O handles.
//
// Thread-safety: loop thread only.
#pragma once

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
};

}  // namespace tulip::detail
