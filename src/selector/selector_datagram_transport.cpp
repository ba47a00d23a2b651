#include "selector/selector_datagram_transport.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"

namespace tulip::detail {

std::shared_ptr<DatagramTransport> EpollBackend::start_datagram_transport(
    DatagramSocket socket, InlineFunction<void()> on_made) {
  claim(socket.fd);
  auto transport = std::make_shared<SelectorDatagramTransport>(*this, std::move(socket));
  transport->start(std::move(on_made));
  return transport;
}

SelectorDatagramTransport::SelectorDatagramTransport(EpollBackend& backend, DatagramSocket socket)
    : loop_(backend.loop()),
      backend_(backend),
      fd_(socket.fd),
      remote_(std::move(socket.remote)),
      sockname_(SocketAddress::local_of(socket.fd)),
      max_size_(std::min(
          socket.max_datagram_size == 0 ? EpollBackend::kReadBufferSize : socket.max_datagram_size,
          EpollBackend::kReadBufferSize)),
      on_release_(std::move(socket.on_release)) {
  set_protocol(std::move(socket.protocol));
}

SelectorDatagramTransport::~SelectorDatagramTransport() {
  // Normally release() ran long ago; this matters only when start() failed.
  if (!released_) close_socket();
}

void SelectorDatagramTransport::close_socket() noexcept {
  if (fd_ >= 0) backend_.close_socket(std::exchange(fd_, -1));
  if (on_release_) {
    Callback release = std::move(on_release_);
    on_release_.reset();
    release();
  }
}

void SelectorDatagramTransport::start(Callback on_made) {
  try {
    backend_.set_interest(fd_, this, kReadable);
    interest_ = kReadable;
  } catch (...) {
    released_ = true;
    lost_ = closing_ = true;
    close_socket();
    throw;
  }
  LoopAccess::internals(loop_).registry.transports.emplace(
      static_cast<LoopMember*>(this),
      std::shared_ptr<LoopMember>(shared(), static_cast<LoopMember*>(this)));
  // connection_made from the ready queue, never inside create_datagram_endpoint;
  // datagrams that arrive earlier wait in the kernel (level-triggered readiness
  // reports them again once reading has started).
  loop_.call_soon([self = shared(), on_made = std::move(on_made)]() mutable {
    auto& transport = static_cast<SelectorDatagramTransport&>(*self);
    if (transport.protocol_ && !transport.released_) {
      try {
        transport.protocol_->connection_made(transport);
      } catch (...) {
        transport.protocol_failed("Exception in protocol.connection_made()");
      }
      transport.reading_started_ = true;
    }
    if (on_made) on_made();
  });
}

void SelectorDatagramTransport::set_protocol(std::shared_ptr<DatagramProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("set_protocol() needs a protocol, not null");
  if (protocol_ && !released_) {
    // The old protocol may be the caller, inside one of its callbacks: it is
    // released on the next iteration, once that call has returned.
    loop_.call_soon([retired = std::move(protocol_)] {});
  }
  protocol_ = std::move(protocol);
}

std::any SelectorDatagramTransport::get_extra_info(std::string_view name) const {
  if (name == "peername") return remote_ ? std::any(*remote_) : std::any{};
  if (name == "sockname") {
    if (fd_ >= 0) sockname_ = SocketAddress::local_of(fd_);
    return sockname_.empty() ? std::any{} : std::any(sockname_);
  }
  if (name == "socket") return std::any(fd_);
  return {};
}

// ---- Events --------------------------------------------------------------------

void SelectorDatagramTransport::on_io_event(std::uint32_t events) {
  if (events & kReadable) on_readable();
  if ((events & kWritable) && !lost_) on_writable();
}

void SelectorDatagramTransport::on_readable() {
  if (!reading_started_ || closing_) return;
  char* buffer = backend_.read_buffer();
  for (int i = 0; i < kMaxReadsPerEvent && !closing_; ++i) {
    sockaddr_storage from;
    iovec vector{buffer, max_size_};
    msghdr message{};
    message.msg_name = &from;
    message.msg_namelen = sizeof(from);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    ssize_t n;
    do {
      n = ::recvmsg(fd_, &message, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int error = errno;
      // Anything else (ECONNREFUSED from an ICMP port-unreachable, most often)
      // is about one datagram, not the endpoint: tell the protocol, go on.
      if (!would_block(error)) report_now(errno_code(error));
      return;
    }
    if (message.msg_flags & MSG_TRUNC) {
      // Delivering the first max_size_ bytes as if they were the datagram
      // would corrupt it silently: drop it and say so.
      report_now(errno_code(EMSGSIZE));
      continue;
    }
    SocketAddress sender(reinterpret_cast<const sockaddr*>(&from), message.msg_namelen);
    try {
      protocol_->datagram_received(std::string_view(buffer, static_cast<std::size_t>(n)), sender);
    } catch (...) {
      protocol_failed("Fatal error: protocol.datagram_received() call failed.");
      return;
    }
  }
}

void SelectorDatagramTransport::on_writable() {
  while (!buffer_.empty()) {
    Pending& front = buffer_.front();
    ssize_t n = send_one(front.data, front.to);
    if (n < 0 && would_block(static_cast<int>(-n))) break;
    buffered_bytes_ -= front.data.size() + kHeaderSize;
    buffer_.pop_front();
    if (n < 0) {
      report_now(errno_code(static_cast<int>(-n)));
      if (lost_) return;  // the protocol aborted the endpoint
    }
  }
  maybe_resume_protocol();
  if (lost_ || !buffer_.empty()) return;
  update_interest();
  if (closing_) schedule_connection_lost({});
}

// ---- Sending ---------------------------------------------------------------------

ssize_t SelectorDatagramTransport::send_one(std::string_view data,
                                            const std::optional<SocketAddress>& to) noexcept {
  for (;;) {
    ssize_t n = to && !remote_
                    ? ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL, to->data(), to->size())
                    : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

void SelectorDatagramTransport::sendto(std::string_view data,
                                       const std::optional<SocketAddress>& address) {
  if (remote_) {
    if (address && !(*address == *remote_)) {
      throw std::invalid_argument("Invalid address: must be None or " + remote_->to_string());
    }
  } else if (!address) {
    throw std::invalid_argument("sendto() needs an address: the endpoint is not connected");
  }
  if (closing_ || lost_) {
    if (dropped_writes_++ == 0) {
      log(LogLevel::kWarning, "sendto() after the transport was closed: " +
                                  std::to_string(data.size()) + " bytes dropped");
    }
    return;
  }
  if (buffer_.empty()) {
    ssize_t n = send_one(data, address);
    if (n >= 0) return;
    int error = static_cast<int>(-n);
    if (!would_block(error)) {
      report_later(errno_code(error));
      return;
    }
  }
  buffer_.push_back({std::string(data), address});
  buffered_bytes_ += data.size() + kHeaderSize;
  update_interest();
  maybe_pause_protocol();
}

void SelectorDatagramTransport::report_later(std::error_code error) {
  // Not inside sendto(): a protocol that sends again from error_received would
  // otherwise recurse for as long as the error lasts.
  loop_.call_soon([self = shared(), error] {
    auto& transport = static_cast<SelectorDatagramTransport&>(*self);
    if (!transport.lost_) transport.report_now(error);
  });
}

void SelectorDatagramTransport::report_now(std::error_code error) {
  if (!protocol_) return;
  try {
    protocol_->error_received(error);
  } catch (...) {
    protocol_failed("Fatal error: protocol.error_received() call failed.");
  }
}

// ---- Flow control and interest ----------------------------------------------------

void SelectorDatagramTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                                        std::optional<std::size_t> low) {
  flow_.set_limits(high, low);
  maybe_pause_protocol();
}

void SelectorDatagramTransport::maybe_pause_protocol() {
  if (!flow_.should_pause(buffered_bytes_) || !protocol_) return;
  try {
    protocol_->pause_writing();
  } catch (...) {
    ExceptionContext details = context("protocol.pause_writing() failed");
    details.exception = std::current_exception();
    loop_.call_exception_handler(details);
  }
}

void SelectorDatagramTransport::maybe_resume_protocol() {
  if (!flow_.should_resume(buffered_bytes_) || !protocol_) return;
  try {
    protocol_->resume_writing();
  } catch (...) {
    ExceptionContext details = context("protocol.resume_writing() failed");
    details.exception = std::current_exception();
    loop_.call_exception_handler(details);
  }
}

void SelectorDatagramTransport::update_interest() noexcept {
  std::uint32_t wanted = 0;
  if (!lost_) {
    if (!closing_) wanted |= kReadable;
    if (!buffer_.empty()) wanted |= kWritable;
  }
  if (wanted == interest_) return;
  try {
    backend_.set_interest(fd_, this, wanted);
    interest_ = wanted;
  } catch (const std::system_error& e) {
    // The kernel refused to change the registration (ENOMEM, ENOSPC): this
    // endpoint cannot go on. Removing a registration never fails, so the
    // close below does not come back here with an error.
    ExceptionContext details = context("Fatal error: cannot watch the socket");
    details.exception = std::current_exception();
    loop_.call_exception_handler(details);
    force_close(e.code());
  }
}

// ---- Closing ------------------------------------------------------------------------

void SelectorDatagramTransport::close() {
  if (closing_) return;
  closing_ = true;
  update_interest();  // reading stops now; buffered datagrams are still sent
  if (buffer_.empty()) schedule_connection_lost({});
}

void SelectorDatagramTransport::abort() { force_close({}); }

void SelectorDatagramTransport::force_close(std::error_code error) {
  if (lost_) return;
  buffer_.clear();
  buffered_bytes_ = 0;
  closing_ = true;
  schedule_connection_lost(error);
}

void SelectorDatagramTransport::schedule_connection_lost(std::error_code error) {
  lost_ = true;
  update_interest();  // leaves the poller now
  // A fresh stack; the captured shared_ptr keeps this object alive until the
  // call has returned.
  loop_.call_soon([self = shared(), error] {
    static_cast<SelectorDatagramTransport&>(*self).call_connection_lost(error);
  });
}

void SelectorDatagramTransport::call_connection_lost(std::error_code error) {
  if (released_) return;
  if (protocol_) {
    try {
      protocol_->connection_lost(error);
    } catch (...) {
      ExceptionContext details = context("Exception in protocol.connection_lost()");
      details.exception = std::current_exception();
      loop_.call_exception_handler(details);
    }
  }
  release();
}

void SelectorDatagramTransport::release() {
  if (released_) return;
  released_ = true;
  interest_ = 0;
  close_socket();
  // Dropping the protocol ends a cycle it may have made with transport.shared().
  std::shared_ptr<DatagramProtocol> protocol = std::move(protocol_);
  // Last: the registry's reference may be the one keeping this object alive.
  LoopAccess::internals(loop_).registry.transports.erase(static_cast<LoopMember*>(this));
}

void SelectorDatagramTransport::shutdown_with_loop() noexcept {
  if (released_) return;
  bool tell_protocol = reading_started_;
  buffer_.clear();
  buffered_bytes_ = 0;
  closing_ = true;
  lost_ = true;
  if (tell_protocol && protocol_) {
    try {
      protocol_->connection_lost(errno_code(ECONNABORTED));
    } catch (...) {
      // The loop is closing: there is no handler left to tell.
    }
  }
  release();
}

// ---- Errors ---------------------------------------------------------------------------

ExceptionContext SelectorDatagramTransport::context(const char* message) const {
  ExceptionContext details;
  details.message = message;
  details.transport = const_cast<SelectorDatagramTransport*>(this);
  details.protocol = protocol_.get();
  return details;
}

void SelectorDatagramTransport::protocol_failed(const char* message) {
  ExceptionContext details = context(message);
  details.exception = std::current_exception();
  loop_.call_exception_handler(details);
  force_close(make_error_code(Error::kCallbackRaised));
}

}  // namespace tulip::detail
