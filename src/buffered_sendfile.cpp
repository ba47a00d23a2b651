#include "buffered_sendfile.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "sendfile_support.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/protocol.hpp"

namespace tulip::detail {
namespace {

// The transport's protocol while the file is sent: it drives the sending and
// stands in for the application's protocol, which it owns until it puts it back.
//
// Ownership: the transport owns this stand-in (as its protocol) while it is
// installed; the stand-in owns the application's protocol and a reference to
// the transport, dropped when it finishes, which ends that cycle.
class BufferedSendfile final : public Protocol,
                               public std::enable_shared_from_this<BufferedSendfile> {
 public:
  BufferedSendfile(Transport& transport, BufferedSendfileTarget& target, int file_fd,
                   std::uint64_t offset, std::size_t count, Future<std::size_t> result)
      : loop_(transport.get_loop()),
        transport_(transport.shared()),
        user_(target.owned_protocol()),
        file_fd_(file_fd),
        offset_(offset),
        count_(count),
        result_(std::move(result)),
        was_reading_(transport.is_reading()),
        user_was_paused_(target.protocol_writing_paused()),
        paused_(user_was_paused_) {}

  void start() {
    transport_->pause_reading();
    transport_->set_protocol(shared_from_this());
    schedule();
  }

  // ---- Protocol: what the transport tells the stand-in -----------------------------

  void pause_writing() override { paused_ = true; }

  void resume_writing() override {
    paused_ = false;
    // Not from inside the transport's flush: the next chunk comes from the loop.
    schedule();
  }

  void connection_lost(std::error_code error) override {
    // The transport is going away: nothing to put back; the application's
    // protocol hears of it as it would have without the sendfile.
    std::shared_ptr<StreamProtocol> user = user_;
    if (!finished_) {
      finished_ = true;
      fail(ended_error(error));
      transport_.reset();
    }
    user->connection_lost(error);
  }

  // Reading is paused for the sendfile; if the application resumed it, the
  // bytes are its own: pass them on.
  void data_received(std::string_view data) override {
    if (auto* plain = dynamic_cast<Protocol*>(user_.get())) {
      plain->data_received(data);
      return;
    }
    auto* buffered = dynamic_cast<BufferedProtocol*>(user_.get());
    while (buffered != nullptr && !data.empty()) {
      std::span<std::byte> into = buffered->get_buffer(data.size());
      if (into.empty()) throw std::runtime_error("get_buffer() returned an empty buffer");
      std::size_t n = std::min(into.size(), data.size());
      std::memcpy(into.data(), data.data(), n);
      buffered->buffer_updated(n);
      data.remove_prefix(n);
    }
  }

  bool eof_received() override { return user_->eof_received(); }

 private:
  void schedule() {
    if (scheduled_ || finished_) return;
    scheduled_ = true;
    loop_.call_soon([self = shared_from_this()] {
      self->scheduled_ = false;
      self->step();
    });
  }

  // One chunk, or the end.
  void step() {
    if (finished_) return;
    if (result_.done()) {
      // Cancelled: stop here, put everything back.
      finish([] {});
      return;
    }
    if (transport_->is_closing()) {
      finish([this] { fail(ended_error({})); });
      return;
    }
    if (paused_) return;  // resume_writing() schedules the next step
    std::size_t want = end_reached_ ? 0 : next_chunk(count_, sent_, kSendfileReadSize);
    if (want == 0) {
      finish([this] { result_.set_result(sent_); });
      return;
    }
    if (!buffer_) buffer_ = std::make_unique_for_overwrite<char[]>(kSendfileReadSize);
    ssize_t n = read_file_at(file_fd_, buffer_.get(), want, offset_ + sent_);
    if (n < 0) {
      std::error_code error = errno_code(static_cast<int>(-n));
      finish([this, error] {
        fail(std::make_exception_ptr(
            OSError(error, "sendfile: reading file_fd " + std::to_string(file_fd_) + " failed " +
                               bytes_sent_text(sent_) + ": " + error.message())));
      });
      return;
    }
    if (n == 0) {
      // The end of the file (shorter than `count`, or cut short meanwhile).
      // The Future completes once the transport is no longer paused.
      end_reached_ = true;
      schedule();
      return;
    }
    transport_->write(std::string_view(buffer_.get(), static_cast<std::size_t>(n)));
    sent_ += static_cast<std::size_t>(n);
    if (count_ != 0 && sent_ == count_) end_reached_ = true;
    schedule();  // paused meanwhile: the step returns at once, resume_writing comes later
  }

  std::exception_ptr ended_error(std::error_code error) const {
    std::string what =
        error ? "the connection was lost " + bytes_sent_text(sent_) + ": " + error.message()
              : "the transport was closed " + bytes_sent_text(sent_);
    return std::make_exception_ptr(
        ConnectionError(error ? error : errno_code(ECONNABORTED), "sendfile: " + what));
  }

  void fail(std::exception_ptr error) {
    if (!result_.done()) result_.set_exception(std::move(error));
  }

  // Puts the application's protocol back, then completes the Future with `complete`.
  template <class Complete>
  void finish(Complete complete) {
    finished_ = true;
    set_file_position_after(file_fd_, offset_, sent_);
    std::shared_ptr<Transport> transport = std::move(transport_);
    // The transport keeps the stand-in alive until the next iteration: this call can finish.
    transport->set_protocol(user_);
    if (was_reading_) transport->resume_reading();  // no effect once closing
    complete();
    // The stand-in only finishes unpaused; a protocol paused at the start
    // missed the resume that came here.
    if (user_was_paused_ && !transport->is_closing()) {
      try {
        user_->resume_writing();
      } catch (...) {
        ExceptionContext details{"protocol.resume_writing() failed", std::current_exception()};
        details.transport = transport.get();
        details.protocol = user_.get();
        loop_.call_exception_handler(details);
      }
    }
  }

  EventLoop& loop_;
  std::shared_ptr<Transport> transport_;  // until finished
  std::shared_ptr<StreamProtocol> user_;  // the application's protocol
  int file_fd_;
  std::uint64_t offset_;
  std::size_t count_;  // 0: to the end of the file
  Future<std::size_t> result_;
  std::unique_ptr<char[]> buffer_;
  std::size_t sent_ = 0;
  bool was_reading_;
  bool user_was_paused_;
  bool paused_;
  bool end_reached_ = false;
  bool scheduled_ = false;
  bool finished_ = false;
};

}  // namespace

bool buffered_sendfile_in_progress(Transport& transport) noexcept {
  auto* target = dynamic_cast<BufferedSendfileTarget*>(&transport);
  return target != nullptr &&
         dynamic_cast<BufferedSendfile*>(target->owned_protocol().get()) != nullptr;
}

void start_buffered_sendfile(Transport& transport, int file_fd, std::uint64_t offset,
                             std::size_t count, Future<std::size_t> result) {
  auto* target = dynamic_cast<BufferedSendfileTarget*>(&transport);
  if (target == nullptr) throw RuntimeError("sendfile is not supported for this transport");
  if (transport.is_closing()) throw RuntimeError("Transport is closing");
  if (buffered_sendfile_in_progress(transport)) {
    throw RuntimeError("sendfile is already in progress on this transport");
  }
  std::make_shared<BufferedSendfile>(transport, *target, file_fd, offset, count, std::move(result))
      ->start();
}

}  // namespace tulip::detail
