// add_reader / add_writer: readiness of a raw descriptor, delivered through the ready queue.
#include "loop_internals.hpp"

namespace tulip::detail {

void FdWatcher::set_reader(Callback callback) {
  queued_reader_.cancel();
  reader_ = std::make_shared<Callback>(std::move(callback));
  update_interest();
}

void FdWatcher::set_writer(Callback callback) {
  queued_writer_.cancel();
  writer_ = std::make_shared<Callback>(std::move(callback));
  update_interest();
}

bool FdWatcher::clear_reader() {
  if (!reader_) return false;
  // As in asyncio, a call already queued for this iteration is cancelled too.
  queued_reader_.cancel();
  reader_.reset();
  update_interest();
  return true;
}

bool FdWatcher::clear_writer() {
  if (!writer_) return false;
  queued_writer_.cancel();
  writer_.reset();
  update_interest();
  return true;
}

void FdWatcher::update_interest() {
  std::uint32_t interest = (reader_ ? kReadable : 0u) | (writer_ ? kWritable : 0u);
  loop_.internals().backend.set_interest(fd_, this, interest);
}

void FdWatcher::on_io_event(std::uint32_t events) {
  // One queued call per side at a time: level-triggered readiness is reported
  // again next iteration if the callback did not consume it.
  if ((events & kReadable) && reader_ && !queued_reader_.pending()) {
    queued_reader_ = loop_.call_soon([callback = reader_] { (*callback)(); });
  }
  if ((events & kWritable) && writer_ && !queued_writer_.pending()) {
    queued_writer_ = loop_.call_soon([callback = writer_] { (*callback)(); });
  }
}

}  // namespace tulip::detail
