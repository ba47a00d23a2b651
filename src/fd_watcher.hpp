// FdWatcher: add_reader / add_writer on one plain descriptor. Not API.
//
// The backend reports readiness to the watcher, which calls the reader or
// writer callback at once: dispatch already runs after the callbacks that were
// ready before the poll, which is where asyncio runs I/O handles.
//
// A descriptor closed behind the loop's back leaves the kernel's interest set
// silently: nothing more is reported, and the number may come back for
// another file. The watcher remembers which file it watches (device and
// inode), so that when the loop next meets that number (another add_reader or
// sock_* call, or a transport, listener or connect taking it) the old watcher
// is abandoned instead of serving, or stealing from, the new file; the
// operations that were waiting on it fail (their on_lost callback) instead of
// waiting forever.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>

#include "io_backend.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

class FdWatcher final : public IoWatcher, public std::enable_shared_from_this<FdWatcher> {
 public:
  /// Why a waiting operation will never be woken: the descriptor was closed
  /// (its number now names another file, or none), or it was handed to a
  /// transport, listener or connect of the loop.
  using LostCallback = InlineFunction<void(bool closed)>;

  FdWatcher(EventLoop& loop, IoBackend& backend, int fd);

  /// `on_lost` (optional) runs, from the ready queue, if the watcher is
  /// abandoned while this reader (writer) is installed.
  void set_reader(Callback callback, LostCallback on_lost = nullptr);
  void set_writer(Callback callback, LostCallback on_lost = nullptr);
  /// Sets the on_lost callback of the installed reader (`write`: writer).
  void set_lost_callback(bool write, LostCallback on_lost) {
    (write ? writer_lost_ : reader_lost_) = std::move(on_lost);
  }
  bool clear_reader();
  bool clear_writer();
  bool idle() const noexcept { return !reader_ && !writer_; }
  /// Which reader (writer) is installed: bumped by every set_reader
  /// (set_writer), so that whoever installed one can tell whether it is still theirs.
  std::uint64_t reader_generation() const noexcept { return reader_ ? reader_generation_ : 0; }
  std::uint64_t writer_generation() const noexcept { return writer_ ? writer_generation_ : 0; }

  void on_io_event(std::uint32_t events) override;

  /// True if the descriptor no longer names the file this watcher was made for.
  bool stale() const noexcept;
  /// Stops watching for good and queues the installed on_lost callbacks.
  void abandon(bool closed) noexcept;

 private:
  void update_interest();

  EventLoop& loop_;
  IoBackend& backend_;
  int fd_;
  dev_t device_ = 0;  // the file watched, as fstat() saw it when the watcher was made
  ino_t inode_ = 0;
  LostCallback reader_lost_;
  LostCallback writer_lost_;
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

/// Gives `fd`'s installed reader (`write`: writer) an on_lost callback.
void set_lost_callback(EventLoop& loop, int fd, bool write, FdWatcher::LostCallback on_lost);

/// Abandons `fd`'s watcher if its descriptor was closed since it was made.
void drop_stale_watcher(EventLoop& loop, int fd);

/// A transport, listener or connect of the loop takes `fd`: a watcher still on
/// it can never be woken again, so it is abandoned.
void hand_over_watched_descriptor(EventLoop& loop, int fd) noexcept;

}  // namespace tulip::detail
