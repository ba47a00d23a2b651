// UringSocketTransport's writing half (uring_socket_transport.hpp): write(),
// the send (or, on a pipe, write) request in flight, flow control and the EOF.
#include <limits.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "pipe_ops.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "uring/uring_pipe_signal.hpp"
#include "uring/uring_socket_transport.hpp"

namespace tulip::detail {
namespace {

// One send takes at most this much of the write buffer (the rest follows).
constexpr std::size_t kMaxSendBytes = 256 * 1024;
constexpr std::size_t kMaxIovecs = 64;
static_assert(kMaxSendBytes <= SendBufferPool::kBlockSize);

}  // namespace
// ---- Writing -----------------------------------------------------------------------

void UringSocketTransport::start_send() {
  if (sent_offset_ == sent_.size()) {
    // Take the front of the write buffer: the send owns its bytes.
    sent_.clear();
    sent_offset_ = 0;
    iovec pieces[kMaxIovecs];
    std::size_t count = buffer_.gather(pieces, kMaxIovecs);
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) total += pieces[i].iov_len;
    backend_.send_buffers().reserve(sent_, std::min(total, kMaxSendBytes));
    for (std::size_t i = 0; i < count && sent_.size() < kMaxSendBytes; ++i) {
      std::size_t take = std::min(pieces[i].iov_len, kMaxSendBytes - sent_.size());
      sent_.append(static_cast<const char*>(pieces[i].iov_base), take);
    }
    buffer_.consume(sent_.size());
  }
  if (wants_zero_copy(sent_.size() - sent_offset_)) {
    start_zero_copy_send();
    return;
  }
  io_uring_sqe* sqe =
      prepare_write_request(sent_.data() + sent_offset_, sent_.size() - sent_offset_);
  send_entry_ = sqe;
  send_epoch_ = backend_.submissions();
  sending_ = true;
  request_started();
}

io_uring_sqe* UringSocketTransport::prepare_write_request(const char* data, std::size_t size) {
  if (kind_ == Kind::kSocket) [[likely]] {
    io_uring_sqe* sqe = backend_.prepare(&send_);
    io_uring_prep_send(sqe, fd_, data, size, MSG_NOSIGNAL);
    return sqe;
  }
  // A write has no MSG_NOSIGNAL: SIGPIPE is held back until it completed
  // (released in on_sent, which every request reaches once).
  io_uring_sqe* sqe = backend_.prepare(&send_);
  PipeSignalHold::acquire();
  io_uring_prep_write(sqe, fd_, data, static_cast<unsigned>(size), ~std::uint64_t{0});
  return sqe;
}

void UringSocketTransport::on_sent(const io_uring_cqe& cqe) {
  sending_ = false;
  if (kind_ != Kind::kSocket) PipeSignalHold::release(cqe.res == -EPIPE);
  if (cqe.res >= 0) {
    sent_offset_ += static_cast<std::size_t>(cqe.res);
  } else if (cqe.res != -ECANCELED && !lost_) {
    sent_.clear();
    sent_offset_ = 0;
    socket_failed(errno_code(-cqe.res));
  }
  after_send();
}

void UringSocketTransport::after_send() {
  if (!lost_) {
    if (sent_offset_ < sent_.size() || !buffer_.empty()) {
      start_send();
    } else {
      sent_offset_ = 0;
      // Writes from handlers pass through sent_: it keeps its memory for the
      // next one, unless a large write left it large (send_buffer_pool.hpp).
      backend_.send_buffers().recycle(sent_);
    }
    resume_protocol_if_needed();
    if (!lost_ && !sending_) {
      if (closing_) {
        schedule_connection_lost({});
      } else if (eof_requested_ && !eof_sent_) {
        send_eof();
      }
    }
    if (eof_after_send_ && !lost_ && !sending_) {
      // The send went through: the 0-byte receive was the peer's EOF after all.
      eof_after_send_ = false;
      if (!closing_) {
        stash_eof_ = true;
        update_requests();
      }
    }
  }
  request_finished();
}

ssize_t UringSocketTransport::send_now(const iovec* buffers, std::size_t count) {
  ssize_t n = kind_ == Kind::kSocket ? send_buffers(fd_, buffers, count)
                                     : write_to_pipe(fd_, buffers, count);
  if (n >= 0) return n;
  if (would_block(static_cast<int>(-n))) return 0;
  socket_failed(errno_code(static_cast<int>(-n)));
  return -1;
}

bool UringSocketTransport::append_to_unsubmitted_send(std::string_view data) {
  if (!send_unsubmitted() || !buffer_.empty() ||
      sent_.size() - sent_offset_ + data.size() > kMaxSendBytes) {
    return false;
  }
  // The kernel has not seen the entry yet: it takes these bytes too, in the
  // same system call. (sent_ may move as it grows: the entry follows it.)
  backend_.send_buffers().reserve(sent_, sent_.size() + data.size());
  sent_.append(data);
  send_entry_->addr = reinterpret_cast<std::uint64_t>(sent_.data() + sent_offset_);
  send_entry_->len = static_cast<std::uint32_t>(sent_.size() - sent_offset_);
  return true;
}

void UringSocketTransport::write(std::string_view data) {
  if (!accept_write(data.size())) return;
  if (append_to_unsubmitted_send(data)) {
    pause_protocol_if_needed();
    return;
  }
  if (!sending_ && buffer_.empty() && backend_.defers_sends()) {
    // Inside a completion handler: the ring takes the send with the loop's
    // next submission, which comes before anything else runs.
    backend_.send_buffers().reserve(sent_, data.size());
    sent_.assign(data);
    sent_offset_ = 0;
    start_send();
    pause_protocol_if_needed();
    return;
  }
  if (!sending_ && buffer_.empty()) {
    iovec buffer{const_cast<char*>(data.data()), data.size()};
    ssize_t sent = send_now(&buffer, 1);
    if (sent < 0 || static_cast<std::size_t>(sent) == data.size()) return;
    // The rest goes to a send request, which owns its bytes.
    data.remove_prefix(static_cast<std::size_t>(sent));
    backend_.send_buffers().reserve(sent_, data.size());
    sent_.assign(data);
    sent_offset_ = 0;
    start_send();
    pause_protocol_if_needed();
    return;
  }
  buffer_.append(data);
  after_buffer_grew();
}

void UringSocketTransport::write(std::string&& data) {
  if (!accept_write(data.size())) return;
  if (append_to_unsubmitted_send(data)) {
    pause_protocol_if_needed();
    return;
  }
  if (!sending_ && buffer_.empty() && backend_.defers_sends()) {
    sent_ = std::move(data);
    sent_offset_ = 0;
    start_send();
    pause_protocol_if_needed();
    return;
  }
  if (!sending_ && buffer_.empty() && wants_zero_copy(data.size()) && backend_.ring_enabled()) {
    // The caller's string becomes the zero-copy request's memory: no byte is
    // copied, where send() would copy them all. Submitted at once, so that the
    // bytes are on their way when write() returns, as after a send().
    sent_ = std::move(data);
    sent_offset_ = 0;
    start_send();
    backend_.submit_prepared();
    pause_protocol_if_needed();
    return;
  }
  if (!sending_ && buffer_.empty()) {
    iovec buffer{data.data(), data.size()};
    ssize_t sent = send_now(&buffer, 1);
    if (sent < 0 || static_cast<std::size_t>(sent) == data.size()) return;
    sent_ = std::move(data);
    sent_offset_ = static_cast<std::size_t>(sent);
    start_send();
    pause_protocol_if_needed();
    return;
  }
  buffer_.append(std::move(data));
  after_buffer_grew();
}

void UringSocketTransport::writelines(std::span<const std::string_view> buffers) {
  std::size_t total = 0;
  for (std::string_view piece : buffers) total += piece.size();
  if (!accept_write(total)) return;
  if (send_unsubmitted() && buffer_.empty() &&
      sent_.size() - sent_offset_ + total <= kMaxSendBytes) {
    for (std::string_view piece : buffers) append_to_unsubmitted_send(piece);
    pause_protocol_if_needed();
    return;
  }
  std::size_t skip = 0;  // bytes of `buffers` the kernel already took
  if (!sending_ && buffer_.empty() && !backend_.defers_sends()) {
    std::vector<iovec> vectors;
    vectors.reserve(std::min<std::size_t>(buffers.size(), IOV_MAX));
    for (std::string_view piece : buffers) {
      if (piece.empty()) continue;
      if (vectors.size() == IOV_MAX) break;
      vectors.push_back({const_cast<char*>(piece.data()), piece.size()});
    }
    ssize_t sent = send_now(vectors.data(), vectors.size());
    if (sent < 0 || static_cast<std::size_t>(sent) == total) return;
    skip = static_cast<std::size_t>(sent);
  }
  for (std::string_view piece : buffers) {
    if (skip >= piece.size()) {
      skip -= piece.size();
      continue;
    }
    buffer_.append(piece.substr(skip));
    skip = 0;
  }
  after_buffer_grew();
}

void UringSocketTransport::after_buffer_grew() {
  if (!sending_) update_requests();
  pause_protocol_if_needed();
}

void UringSocketTransport::pause_protocol_if_needed() {
  if (!flow_.should_pause(get_write_buffer_size()) || !protocol_) return;
  try {
    protocol_->pause_writing();
  } catch (...) {
    report_current_exception("protocol.pause_writing() failed");
  }
}

void UringSocketTransport::resume_protocol_if_needed() {
  if (!flow_.should_resume(get_write_buffer_size()) || !protocol_) return;
  try {
    protocol_->resume_writing();
  } catch (...) {
    report_current_exception("protocol.resume_writing() failed");
  }
}

bool UringSocketTransport::refuse_pipe_write(std::size_t bytes) {
  if (kind_ == Kind::kReadPipe && bytes != 0) {
    throw RuntimeError("write() on a read pipe transport: it has no writing half");
  }
  return refuse_write(bytes);
}

void UringSocketTransport::write_eof() {
  if (kind_ == Kind::kReadPipe) {
    throw RuntimeError("write_eof() on a read pipe transport: it has no writing half");
  }
  // A write pipe's reader sees EOF when the pipe closes: there is no other
  // half to keep open (asyncio's _UnixWritePipeTransport.write_eof).
  if (kind_ == Kind::kWritePipe) {
    close();
    return;
  }
  if (closing_ || eof_requested_) return;
  eof_requested_ = true;
  if (buffer_.empty() && !sending_) send_eof();
}

void UringSocketTransport::send_eof() {
  ::shutdown(fd_, SHUT_WR);
  eof_sent_ = true;
}

}  // namespace tulip::detail
