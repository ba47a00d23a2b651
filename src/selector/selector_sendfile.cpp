// loop.sendfile on a selector stream transport: the kernel's sendfile(2).
//
// asyncio's _sendfile_native and _sock_sendfile_native, inside the transport
// rather than beside it: the transport owns its socket's registration, so it
// is the one that waits for writability. While the file is sent, reading is
// paused (and resumed afterwards if it was on) and write() refuses; what was
// buffered before goes out first. Each writability event makes one
// sendfile(2) call of at most kChunk bytes, so that one large file cannot keep
// the loop from its other sockets. The file's position is left after the last
// byte sent. A refusal before the first byte (a file system without splice
// support: EINVAL, ENOSYS, ...) is reported as "not available", and the
// caller falls back to the buffered path.
#include <cerrno>

#include "selector/selector_socket_transport.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"

namespace tulip::detail {
namespace {

// Bytes per sendfile(2) call at most: large enough that the system call and
// the poll around it cost nothing next to the copy, small enough that other
// sockets wait well under a millisecond.
constexpr std::size_t kChunk = 1 << 20;

// The kernel cannot send this file this way: nothing was sent, use the buffered path.
bool not_available(int error) {
  return error == EINVAL || error == ENOSYS || error == EOPNOTSUPP || error == EOVERFLOW ||
         error == ESPIPE;
}

// The connection itself failed: the transport ends with this error.
bool connection_failure(int error) {
  switch (error) {
    case EPIPE:
    case ECONNRESET:
    case ECONNABORTED:
    case ENOTCONN:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool EpollBackend::start_sendfile(Transport& transport, SendfileJob& job) {
  auto* native = dynamic_cast<SelectorSocketTransport*>(&transport);
  if (native == nullptr || !native->is_socket() || &native->get_loop() != &loop_) return false;
  native->start_sendfile(job);
  return true;
}

void SelectorSocketTransport::start_sendfile(SendfileJob& job) {
  if (closing_ || lost_) throw RuntimeError("Transport is closing");
  if (sendfile_) throw RuntimeError("sendfile is already in progress on this transport");
  if (eof_requested_) throw RuntimeError("Cannot call sendfile() after write_eof()");
  auto state = std::make_unique<NativeSendfile>(NativeSendfile{job.file_fd, job.offset, job.count,
                                                               0, is_reading(), std::move(job.done),
                                                               std::move(job.cancelled)});
  sendfile_ = std::move(state);
  // As asyncio: the protocol reads nothing while its transport sends a file.
  reading_paused_ = true;
  if (buffer_.empty()) {
    // Nothing to wait for: the first call now, as asyncio makes it. The
    // outcome still reaches the caller from the ready queue.
    send_file_chunk();
  } else {
    update_interest();
  }
}

void SelectorSocketTransport::send_file_chunk() {
  NativeSendfile& job = *sendfile_;
  std::size_t want = next_chunk(job.count, job.sent, kChunk);
  // A cancelled caller wants nothing more sent; the outcome reaches nobody.
  if (want == 0 || (job.cancelled && job.cancelled())) {
    finish_sendfile({});
    return;
  }
  auto position = static_cast<off_t>(job.offset + job.sent);
  int injected = backend_.take_injected_sendfile_failure();
  ssize_t n = injected != 0 ? -injected : send_file(fd_, job.file_fd, &position, want);
  if (n > 0) {
    job.sent += static_cast<std::size_t>(n);
    if (job.count != 0 && job.sent == job.count) {
      finish_sendfile({});
    } else {
      // Level-triggered: the next poll reports the socket again while it has room.
      update_interest();
    }
    return;
  }
  if (n == 0) {
    // The end of the file: it was shorter than `count`, or was cut short
    // while being sent. The caller gets the bytes that did go.
    finish_sendfile({});
    return;
  }
  int error = static_cast<int>(-n);
  if (would_block(error)) {
    update_interest();
    return;
  }
  if (job.sent == 0 && not_available(error)) {
    finish_sendfile({0, errno_code(error), true, false});
    return;
  }
  if (connection_failure(error)) {
    finish_sendfile({0, errno_code(error), false, true});
    socket_failed(errno_code(error));
    return;
  }
  // A failure of the file (EIO, ...): the sendfile fails, the connection stays.
  finish_sendfile({0, errno_code(error), false, false});
}

void SelectorSocketTransport::finish_sendfile(SendfileOutcome outcome) {
  std::unique_ptr<NativeSendfile> job = std::move(sendfile_);
  outcome.sent = job->sent;
  set_file_position_after(job->file_fd, job->offset, job->sent);
  // Reading resumes if it was on before, as asyncio does (no effect when closing).
  if (job->resume_reading && !closing_) reading_paused_ = false;
  update_interest();
  if (!closing_ && !lost_ && buffer_.empty() && eof_requested_ && !eof_sent_) {
    // write_eof() during the sendfile: the EOF follows the file.
    send_eof();
  }
  loop_.call_soon([done = std::move(job->done), outcome]() mutable {
    if (done) done(outcome);
  });
}

}  // namespace tulip::detail
