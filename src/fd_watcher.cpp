// add_reader / add_writer: readiness of a plain descriptor, as loop callbacks.
#include "fd_watcher.hpp"

#include <sys/stat.h>

#include <stdexcept>
#include <string>

#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip {
namespace detail {

FdWatcher::FdWatcher(EventLoop& loop, IoBackend& backend, int fd)
    : loop_(loop), backend_(backend), fd_(fd) {
  struct stat status;
  if (::fstat(fd, &status) == 0) {
    device_ = status.st_dev;
    inode_ = status.st_ino;
  }
}

void FdWatcher::set_reader(Callback callback, LostCallback on_lost) {
  reader_ = std::make_shared<Callback>(std::move(callback));
  reader_lost_ = std::move(on_lost);
  ++reader_generation_;
  update_interest();
}

void FdWatcher::set_writer(Callback callback, LostCallback on_lost) {
  writer_ = std::make_shared<Callback>(std::move(callback));
  writer_lost_ = std::move(on_lost);
  ++writer_generation_;
  update_interest();
}

bool FdWatcher::clear_reader() {
  if (!reader_) return false;
  reader_.reset();
  reader_lost_.reset();
  update_interest();
  return true;
}

bool FdWatcher::clear_writer() {
  if (!writer_) return false;
  writer_.reset();
  writer_lost_.reset();
  update_interest();
  return true;
}

bool FdWatcher::stale() const noexcept {
  struct stat status;
  if (::fstat(fd_, &status) != 0) return true;
  return status.st_dev != device_ || status.st_ino != inode_;
}

void FdWatcher::abandon(bool closed) noexcept {
  // Removing a registration never fails (and removes nothing that belongs to
  // a new owner: the backend checks the watcher).
  backend_.set_interest(fd_, this, 0);
  reader_.reset();
  writer_.reset();
  for (LostCallback* lost : {&reader_lost_, &writer_lost_}) {
    if (!*lost) continue;
    try {
      // A fresh stack for the operation's failure, as for every completion.
      loop_.call_soon([callback = std::move(*lost), closed]() mutable { callback(closed); });
    } catch (...) {
      // The loop is closing: the operation's Future stays pending, as at close.
    }
    lost->reset();
  }
}

void FdWatcher::update_interest() {
  std::uint32_t interest = (reader_ ? kReadable : 0u) | (writer_ ? kWritable : 0u);
  backend_.set_interest(fd_, this, interest);
}

void FdWatcher::on_io_event(std::uint32_t events) {
  // The callbacks may remove this watcher (and free it) or replace themselves:
  // hold the watcher and each callable for the duration of its call.
  std::shared_ptr<FdWatcher> self = shared_from_this();
  auto run = [this](const std::shared_ptr<Callback>& callback) {
    try {
      (*callback)();
    } catch (...) {
      loop_.call_exception_handler({"Exception in callback", std::current_exception()});
    }
  };
  if (events & kReadable) {
    if (std::shared_ptr<Callback> reader = reader_) run(reader);
  }
  // The reader may have removed the writer: look again.
  if (events & kWritable) {
    if (std::shared_ptr<Callback> writer = writer_) run(writer);
  }
}

namespace {

FdWatcher& watcher_for(EventLoop& loop, int fd, const char* method, Callback& callback) {
  LoopAccess::throw_if_closed(loop);
  if (fd < 0) throw std::invalid_argument(std::string(method) + "(): invalid descriptor");
  if (!callback) throw std::invalid_argument(std::string(method) + "() needs a callable");
  IoBackend& backend = LoopAccess::backend(loop);
  if (backend.owns(fd)) {
    throw RuntimeError("File descriptor " + std::to_string(fd) +
                       " is used by a transport, server or connection of this loop");
  }
  drop_stale_watcher(loop, fd);
  auto& watcher = LoopAccess::internals(loop).fd_watchers[fd];
  if (!watcher) watcher = std::make_shared<FdWatcher>(loop, backend, fd);
  return *watcher;
}

template <class Clear>
bool remove_watch(EventLoop& loop, int fd, Clear clear) {
  if (fd >= 0 && LoopAccess::backend(loop).owns(fd)) {
    throw RuntimeError("File descriptor " + std::to_string(fd) +
                       " is used by a transport, server or connection of this loop");
  }
  auto& watchers = LoopAccess::internals(loop).fd_watchers;
  auto it = watchers.find(fd);
  if (it == watchers.end()) return false;
  bool removed = clear(*it->second);
  // The backend drops the idle watcher's pending events, and a running call
  // holds its own reference, so erasing it here is safe at any time.
  if (it->second->idle()) watchers.erase(it);
  return removed;
}

}  // namespace

std::uint64_t watch_generation(EventLoop& loop, int fd, bool write) noexcept {
  auto& watchers = LoopAccess::internals(loop).fd_watchers;
  auto it = watchers.find(fd);
  if (it == watchers.end()) return 0;
  return write ? it->second->writer_generation() : it->second->reader_generation();
}

void set_lost_callback(EventLoop& loop, int fd, bool write, FdWatcher::LostCallback on_lost) {
  auto& watchers = LoopAccess::internals(loop).fd_watchers;
  auto it = watchers.find(fd);
  if (it != watchers.end()) it->second->set_lost_callback(write, std::move(on_lost));
}

void drop_stale_watcher(EventLoop& loop, int fd) {
  auto& watchers = LoopAccess::internals(loop).fd_watchers;
  auto it = watchers.find(fd);
  if (it == watchers.end() || !it->second->stale()) return;
  std::shared_ptr<FdWatcher> stale = std::move(it->second);
  watchers.erase(it);
  stale->abandon(true);
}

void hand_over_watched_descriptor(EventLoop& loop, int fd) noexcept {
  auto& watchers = LoopAccess::internals(loop).fd_watchers;
  if (watchers.empty()) return;  // the common case, on every accept and connect
  auto it = watchers.find(fd);
  if (it == watchers.end()) return;
  std::shared_ptr<FdWatcher> left = std::move(it->second);
  watchers.erase(it);
  left->abandon(left->stale());
}

void remove_watch_if_current(EventLoop& loop, int fd, bool write, std::uint64_t generation) {
  if (generation == 0 || watch_generation(loop, fd, write) != generation) return;
  if (write) {
    loop.remove_writer(fd);
  } else {
    loop.remove_reader(fd);
  }
}

}  // namespace detail

void EventLoop::add_reader(int fd, Callback callback) {
  detail::FdWatcher& watcher = detail::watcher_for(*this, fd, "add_reader", callback);
  try {
    watcher.set_reader(std::move(callback));
  } catch (...) {
    remove_reader(fd);  // the kernel refused: leave no half-made watcher behind
    throw;
  }
}

void EventLoop::add_writer(int fd, Callback callback) {
  detail::FdWatcher& watcher = detail::watcher_for(*this, fd, "add_writer", callback);
  try {
    watcher.set_writer(std::move(callback));
  } catch (...) {
    remove_writer(fd);
    throw;
  }
}

bool EventLoop::remove_reader(int fd) {
  return detail::remove_watch(*this, fd, [](detail::FdWatcher& w) { return w.clear_reader(); });
}

bool EventLoop::remove_writer(int fd) {
  return detail::remove_watch(*this, fd, [](detail::FdWatcher& w) { return w.clear_writer(); });
}

}  // namespace tulip
