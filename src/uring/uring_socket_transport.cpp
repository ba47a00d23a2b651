#include "uring/uring_socket_transport.hpp"

#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "pipe_ops.hpp"
#include "server_access.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/peer_credentials.hpp"
#include "tulip/server.hpp"

namespace tulip::detail {
namespace {

// The size a BufferedProtocol's get_buffer() is asked for (asyncio's max_size,
// as on the epoll backend), whatever one completion carries.
constexpr std::size_t kBufferHint = 256 * 1024;

}  // namespace

std::shared_ptr<Transport> UringBackend::start_stream_transport(StreamSocket socket,
                                                                InlineFunction<void()> on_made) {
  claim(socket.fd);
  auto transport = std::make_shared<UringSocketTransport>(*this, std::move(socket));
  transport->start(std::move(on_made));
  return transport;
}

UringSocketTransport::UringSocketTransport(UringBackend& backend, StreamSocket socket)
    : StreamTransportBase(backend.loop()),
      backend_(backend),
      fd_(socket.fd),
      server_(std::move(socket.server)),
      peername_(socket.peer.empty() ? SocketAddress::peer_of(socket.fd) : socket.peer),
      sockname_(SocketAddress::local_of(socket.fd)) {
  set_protocol(std::move(socket.protocol));
  // Only TCP sends zero-copy (a Unix socket refuses it: EOPNOTSUPP).
  zero_copy_allowed_ = sockname_.family() == AF_INET || sockname_.family() == AF_INET6;
}

UringSocketTransport::~UringSocketTransport() {
  if (!released_) backend_.close_socket(fd_);
}

void UringSocketTransport::start(Callback on_made) {
  // Nothing is submitted before connection_made has run: reading starts from
  // interest_changed after it, as on every backend.
  begin(std::move(on_made));
  if (server_) ServerAccess::attach(*server_, this);
}

std::any UringSocketTransport::get_extra_info(std::string_view name) const {
  if (kind_ != Kind::kSocket) {
    // asyncio's pipe transports give the pipe; here, its descriptor.
    if (name == "pipe") return std::any(fd_);
    return {};
  }
  if (name == "peername") return peername_.empty() ? std::any{} : std::any(peername_);
  if (name == "sockname") return sockname_.empty() ? std::any{} : std::any(sockname_);
  if (name == "socket") return std::any(fd_);
  if (name == "peercred" && fd_ >= 0 && sockname_.family() == AF_UNIX) {
    ucred credentials{};
    socklen_t length = sizeof(credentials);
    if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return {};
    return std::any(PeerCredentials{credentials.pid, credentials.uid, credentials.gid});
  }
  return {};
}

// ---- Requests ----------------------------------------------------------------------

void UringSocketTransport::request_started() {
  if (requests_++ == 0) self_ = shared();
}

void UringSocketTransport::request_finished() noexcept {
  if (--requests_ == 0) {
    // May destroy this object: the last thing done here.
    std::shared_ptr<Transport> last = std::move(self_);
  }
}

void UringSocketTransport::update_requests() noexcept {
  try {
    if (wants_to_read()) {
      if (!stash_.empty() || stash_eof_) {
        // Bytes that arrived while paused go first, from the ready queue
        // (resume_reading never calls the protocol itself).
        if (!stash_scheduled_) {
          stash_scheduled_ = true;
          loop_.call_soon(
              [self = shared()] { static_cast<UringSocketTransport&>(*self).deliver_stash(); });
        }
      } else if (!receiving_ && !eof_after_send_) {
        arm_receive();
      }
    } else if (watches_hang_up()) {
      if (!receiving_) arm_receive();
    } else if (receiving_ && !receive_cancelled_) {
      backend_.cancel(&receive_);
      receive_cancelled_ = true;
    }
    if (lost_) {
      if (sending_) backend_.cancel(send_request());
    } else if (!sending_ && !buffer_.empty()) {
      start_send();
    }
  } catch (const std::exception&) {
    report_current_exception("Fatal error: cannot submit an io_uring request");
    force_close(std::make_error_code(std::errc::not_enough_memory));
  }
}

void UringSocketTransport::arm_receive() {
  io_uring_sqe* sqe = backend_.prepare(&receive_);
  if (kind_ == Kind::kWritePipe) {
    // No bytes come this way: an error or hang-up (or, on a socket, anything
    // readable, as asyncio's _read_ready) says the reader went away.
    io_uring_prep_poll_add(sqe, fd_, POLLIN | POLLERR | POLLHUP);
    receive_polls_ = true;
  } else if (buffered_protocol_ != nullptr) {
    // A BufferedProtocol's bytes go straight into its get_buffer() memory:
    // the ring says when the socket is readable, and a recv() into that
    // memory takes them, as on epoll. (A receive request into that memory
    // would let the kernel write there after the protocol gave it up.)
    io_uring_prep_poll_add(sqe, fd_, POLLIN);
    receive_polls_ = true;
  } else if (kind_ == Kind::kReadPipe) {
    // A pipe has no multishot read on this kernel generation: one read at a
    // time, re-armed after each completion, into a buffer of the ring that the
    // kernel picks only once bytes are there (offset -1: a stream has none).
    io_uring_prep_read(sqe, fd_, nullptr, UringBackend::kReceiveBufferSize, ~std::uint64_t{0});
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = UringBackend::kBufferGroup;
    receive_polls_ = false;
  } else {
    io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = UringBackend::kBufferGroup;
    receive_polls_ = false;
  }
  receiving_ = true;
  receive_cancelled_ = false;
  request_started();
}

// ---- Reading ----------------------------------------------------------------------

void UringSocketTransport::on_received(const io_uring_cqe& cqe) {
  if (receive_polls_) {
    if (kind_ == Kind::kWritePipe) {
      on_hang_up(cqe);
    } else {
      on_readable(cqe);
    }
    return;
  }
  bool final = (cqe.flags & IORING_CQE_F_MORE) == 0;
  if (final) receiving_ = false;
  if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER) != 0) {
    unsigned id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
    std::string_view data(backend_.receive_buffer(id), static_cast<std::size_t>(cqe.res));
    if (lost_ || closing_) {
      // Nobody reads any more: the bytes are dropped, as the kernel would.
    } else if (!wants_to_read() || !stash_.empty()) {
      stash_.append(data);
    } else {
      try {
        deliver(data);
      } catch (...) {
        backend_.recycle_buffer(id);
        if (final) request_finished();
        throw;
      }
    }
    backend_.recycle_buffer(id);
    if (kind_ == Kind::kReadPipe && cqe.res == static_cast<int>(UringBackend::kReceiveBufferSize)) {
      read_pipe_burst();
    }
  } else if (cqe.res == 0) {
    // A read at EOF picked a buffer all the same (a receive may too): it goes
    // back, or the ring runs dry after as many EOFs as it has buffers.
    if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) {
      backend_.recycle_buffer(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    }
    if (!lost_ && !closing_) {
      if (eof_waits_for_send()) {
        eof_after_send_ = true;
      } else if (wants_to_read() && stash_.empty()) {
        on_eof();
      } else {
        stash_eof_ = true;
      }
    }
  } else if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED) {
    if (!lost_) socket_failed(errno_code(-cqe.res));
  }
  if (!final && buffered_protocol_ != nullptr && receiving_ && !receive_cancelled_) {
    // A BufferedProtocol took over (set_protocol): end the receive into the
    // ring, so that the next one reads into the protocol's memory.
    backend_.cancel(&receive_);
    receive_cancelled_ = true;
  }
  if (final) {
    // Ended by the kernel (out of buffers, or it stopped for its own reasons)
    // or by a cancellation: go on if reading is still wanted.
    if (cqe.res != 0) update_requests();
    request_finished();
  }
}

void UringSocketTransport::on_readable(const io_uring_cqe& cqe) {
  receiving_ = false;  // a poll request completes once
  if (cqe.res > 0) {
    if (wants_to_read() && stash_.empty() && buffered_protocol_ != nullptr) {
      read_into_buffered_protocol();
    }
  } else if (cqe.res < 0 && cqe.res != -ECANCELED && !lost_) {
    socket_failed(errno_code(-cqe.res));
  }
  // Armed again while reading is wanted: a poll request sees bytes already
  // waiting, so none is missed (or a receive into the ring, if the protocol
  // is no longer a BufferedProtocol).
  update_requests();
  request_finished();
}

void UringSocketTransport::read_into_buffered_protocol() {
  BufferedProtocol* target = buffered_protocol_;
  std::span<std::byte> buffer = buffer_for_next_read(kBufferHint);
  if (buffer.empty()) return;
  ssize_t n = kind_ == Kind::kSocket ? ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT)
                                     : read_from_pipe(fd_, buffer.data(), buffer.size());
  if (n < 0) {
    int error = kind_ == Kind::kSocket ? errno : static_cast<int>(-n);
    if (!would_block(error)) socket_failed(errno_code(error));
    return;
  }
  if (n == 0) {
    if (eof_waits_for_send()) {
      eof_after_send_ = true;
    } else {
      on_eof();
    }
    return;
  }
  try {
    target->buffer_updated(static_cast<std::size_t>(n));
  } catch (...) {
    protocol_failed("Fatal error: protocol.buffer_updated() call failed.");
  }
}

void UringSocketTransport::deliver(std::string_view data) {
  if (buffered_protocol_ != nullptr) {
    deliver_to_buffered_protocol(data);
    return;
  }
  if (data_protocol_ == nullptr) return;
  try {
    data_protocol_->data_received(data);
  } catch (...) {
    protocol_failed("Fatal error: protocol.data_received() call failed.");
  }
}

void UringSocketTransport::deliver_to_buffered_protocol(std::string_view data) {
  BufferedProtocol* target = buffered_protocol_;
  while (!data.empty()) {
    std::span<std::byte> buffer;
    try {
      buffer = target->get_buffer(kBufferHint);
    } catch (...) {
      protocol_failed("Fatal error: protocol.get_buffer() call failed.");
      return;
    }
    if (closing_) return;
    if (reading_paused_ || target != buffered_protocol_) {
      // Paused, or a new protocol: it gets the rest when reading goes on.
      stash_.insert(0, data);
      if (!reading_paused_) update_requests();
      return;
    }
    if (buffer.empty()) {
      loop_.call_exception_handler(context("Fatal error: get_buffer() returned an empty buffer"));
      force_close(make_error_code(Error::kEmptyBuffer));
      return;
    }
    std::size_t n = std::min(buffer.size(), data.size());
    std::memcpy(buffer.data(), data.data(), n);
    data.remove_prefix(n);
    try {
      target->buffer_updated(n);
    } catch (...) {
      protocol_failed("Fatal error: protocol.buffer_updated() call failed.");
      return;
    }
    if (closing_ || target != buffered_protocol_ || reading_paused_) {
      if (!closing_ && !data.empty()) {
        stash_.insert(0, data);
        update_requests();
      }
      return;
    }
  }
}

void UringSocketTransport::deliver_stash() {
  stash_scheduled_ = false;
  if (!wants_to_read()) return;
  if (!stash_.empty()) {
    std::string data = std::move(stash_);
    stash_.clear();
    std::string_view rest(data);
    // In pieces of what one receive carries, as the bytes came: a protocol
    // that pauses reading after one (flow control: its write buffer is full)
    // gets the rest only when it resumes, not all of it at once.
    while (!rest.empty() && data_protocol_ != nullptr && wants_to_read()) {
      std::string_view piece = rest.substr(0, UringBackend::kReceiveBufferSize);
      rest.remove_prefix(piece.size());
      deliver(piece);
    }
    if (!rest.empty() && buffered_protocol_ != nullptr && wants_to_read()) {
      deliver_to_buffered_protocol(rest);
    } else if (!rest.empty() && !closing_ && !lost_) {
      stash_.insert(0, rest);  // paused again: kept for the next resume
    }
  }
  if (stash_.empty() && stash_eof_ && wants_to_read()) {
    stash_eof_ = false;
    on_eof();
    return;
  }
  update_requests();
}

// A receive of 0 bytes is the peer's FIN, or what a receive returns after
// the peer reset the connection once the reset's error was taken by another
// call: on io_uring, by the send request in flight, whose completion (with
// ECONNRESET) may come after the receive's. A TCP socket in state CLOSE with a
// send in flight is the ambiguous case: its EOF waits for that send, which
// completes at once on a closed connection, with the error if it was a reset.
bool UringSocketTransport::eof_waits_for_send() const noexcept {
  if (!sending_) return false;
  tcp_info info{};
  socklen_t size = sizeof info;
  return ::getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &info, &size) == 0 &&
         info.tcpi_state == TCP_CLOSE;
}

void UringSocketTransport::on_eof() {
  eof_received_ = true;
  update_requests();
  bool keep_open = false;
  try {
    keep_open = protocol_ && protocol_->eof_received();
  } catch (...) {
    protocol_failed("Fatal error: protocol.eof_received() call failed.");
    return;
  }
  // A read pipe has nothing left to do once its writer has finished: it
  // closes whatever eof_received answered (asyncio's _UnixReadPipeTransport).
  if (!keep_open || kind_ == Kind::kReadPipe) close();
}

// ---- Closing -----------------------------------------------------------------------

void UringSocketTransport::close() {
  if (closing_ || !sending_) {
    StreamTransportBase::close();
    return;
  }
  // A send is in flight: connection_lost waits for it (on_sent), as it waits
  // for buffered bytes.
  closing_ = true;
  on_closing(errno_code(ECONNABORTED));
  update_requests();
}

void UringSocketTransport::release_resources() noexcept {
  if (receiving_ && !receive_cancelled_) {
    backend_.cancel(&receive_);
    receive_cancelled_ = true;
  }
  if (sending_) backend_.cancel(send_request());
  stash_.clear();
  // A request prepared and not yet submitted names this descriptor by number:
  // the kernel must have it before the number is closed (and perhaps reused).
  if (requests_ > 0) backend_.submit_prepared();
  // A request in flight holds the socket open past close() until its
  // cancellation completes: end the connection now, so that the peer sees the
  // end when close() or abort() says (as on epoll), not an iteration later.
  // (A pipe has no such end: its requests are cancelled with the submission above.)
  if (requests_ > 0 && kind_ == Kind::kSocket) ::shutdown(fd_, SHUT_RDWR);
  backend_.close_socket(std::exchange(fd_, -1));
  std::shared_ptr<Server> server = std::move(server_);
  if (server) ServerAccess::detach(*server, this);
}

std::string UringSocketTransport::describe_endpoint() const {
  switch (kind_) {
    case Kind::kSocket:
      return "peer " + peername_.to_string();
    case Kind::kReadPipe:
      return "read pipe";
    case Kind::kWritePipe:
      return "write pipe";
  }
  return {};
}

}  // namespace tulip::detail
