// add_reader / add_writer: readiness of a plain descriptor, as loop callbacks.
#include "fd_watcher.hpp"

#include <stdexcept>
#include <string>

#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip {
namespace detail {

void FdWatcher::set_reader(Callback callback) {
  reader_ = std::make_shared<Callback>(std::move(callback));
  ++reader_generation_;
  update_interest();
}

void FdWatcher::set_writer(Callback callback) {
  writer_ = std::make_shared<Callback>(std::move(callback));
  ++writer_generation_;
  update_interest();
}

bool FdWatcher::clear_reader() {
  if (!reader_) return false;
  reader_.reset();
  update_interest();
  return true;
}

bool FdWatcher::clear_writer() {
  if (!writer_) return false;
  writer_.reset();
  update_interest();
  return true;
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
