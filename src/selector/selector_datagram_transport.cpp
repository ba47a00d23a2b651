#include "selector/selector_datagram_transport.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

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
  // No UDP datagram is longer than 64 KiB (65,507 payload bytes over IPv4),
  // so its receive slots need not be longer either.
  int domain = get_int_option(fd_, SOL_SOCKET, SO_DOMAIN);
  slot_size_ =
      domain == AF_INET || domain == AF_INET6 ? std::min<std::size_t>(max_size_, 65536) : max_size_;
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
  DatagramBatch& batch = backend_.datagram_batch();
  int received = 0;
  while (received < kMaxReadsPerEvent && !closing_) {
    int slots = std::min(batch.prepare_receive(slot_size_), kMaxReadsPerEvent - received);
    int n;
    do {
      n = ::recvmmsg(fd_, batch.messages, static_cast<unsigned>(slots), 0, nullptr);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int error = errno;
      // Anything else (ECONNREFUSED from an ICMP port-unreachable, most often)
      // is about one datagram, not the endpoint: tell the protocol, go on.
      if (!would_block(error)) report_now(errno_code(error));
      return;
    }
    batch.received(n);
    received += n;
    // Replies to several datagrams leave together; a lone one goes at once,
    // as it would without batching (queueing it would only cost time).
    delivering_ = n > 1;
    for (int i = 0; i < n && !closing_; ++i) {
      const msghdr& header = batch.messages[i].msg_hdr;
      if (header.msg_flags & MSG_TRUNC) {
        // Delivering the first slot's worth of bytes as if they were the
        // datagram would corrupt it silently: drop it and say so.
        report_now(errno_code(EMSGSIZE));
        continue;
      }
      SocketAddress sender(static_cast<const sockaddr*>(header.msg_name), header.msg_namelen);
      try {
        protocol_->datagram_received(
            std::string_view(static_cast<const char*>(batch.vectors[i].iov_base),
                             batch.messages[i].msg_len),
            sender);
      } catch (...) {
        delivering_ = false;
        protocol_failed("Fatal error: protocol.datagram_received() call failed.");
        return;
      }
    }
    // Before the next recvmmsg() reuses the slots the replies may point into.
    delivering_ = false;
    if (corked_ != 0) flush_corked();
    if (n < slots) return;  // the socket is drained
  }
}

void SelectorDatagramTransport::on_writable() {
  DatagramBatch& batch = backend_.datagram_batch();
  while (!buffer_.empty()) {
    int count =
        static_cast<int>(std::min<std::size_t>(buffer_.size(), DatagramBatch::kMaxDatagrams));
    for (int i = 0; i < count; ++i) {
      const Pending& pending = buffer_[static_cast<std::size_t>(i)];
      prepare_send(i, pending.data.data(), pending.data.size(), pending.to);
    }
    int n = ::sendmmsg(fd_, batch.send_messages, static_cast<unsigned>(count), MSG_NOSIGNAL);
    if (n < 0) {
      int error = errno;
      if (error == EINTR) continue;
      if (would_block(error)) break;
      // The first datagram's own error: drop it, tell the protocol, go on.
      buffered_bytes_ -= buffer_.front().data.size() + kHeaderSize;
      buffer_.pop_front();
      report_now(errno_code(error));
      if (lost_) return;  // the protocol aborted the endpoint
      continue;
    }
    for (int i = 0; i < n; ++i) {
      buffered_bytes_ -= buffer_.front().data.size() + kHeaderSize;
      buffer_.pop_front();
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
    if (delivering_) {
      // Inside datagram_received: it leaves with the batch's other replies.
      cork(data, address);
      return;
    }
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

void SelectorDatagramTransport::prepare_send(int index, const char* data, std::size_t size,
                                             const std::optional<SocketAddress>& to) noexcept {
  DatagramBatch& batch = backend_.datagram_batch();
  batch.send_vectors[index] = {const_cast<char*>(data), size};
  msghdr& header = batch.send_messages[index].msg_hdr;
  header = {};
  if (to && !remote_) {
    header.msg_name = const_cast<sockaddr*>(to->data());
    header.msg_namelen = to->size();
  }
  header.msg_iov = &batch.send_vectors[index];
  header.msg_iovlen = 1;
}

void SelectorDatagramTransport::cork(std::string_view data,
                                     const std::optional<SocketAddress>& to) {
  DatagramBatch& batch = backend_.datagram_batch();
  int index = corked_++;
  msghdr& header = batch.send_messages[index].msg_hdr;
  header = {};
  if (to && !remote_) {
    // A copy: the address given (often the sender's, made for the callback) dies with the call.
    std::memcpy(&batch.send_names[index], to->data(), to->size());
    header.msg_name = &batch.send_names[index];
    header.msg_namelen = to->size();
  }
  header.msg_iov = &batch.send_vectors[index];
  header.msg_iovlen = 1;
  batch.send_vectors[index].iov_len = data.size();
  if (!data.empty() && batch.holds(data.data()) && batch.holds(data.data() + data.size() - 1)) {
    // A datagram of the batch being delivered (an echo): its slot is not
    // reused before the flush, so it need not be copied.
    batch.send_vectors[index].iov_base = const_cast<char*>(data.data());
    batch.send_offsets[index] = DatagramBatch::kInPlace;
  } else {
    // The caller's bytes are free when sendto returns: keep a copy (pointed
    // at when flushing, as the copy may move while it grows).
    batch.send_offsets[index] = cork_bytes_.size();
    cork_bytes_.append(data);
  }
  if (corked_ == DatagramBatch::kMaxDatagrams) flush_corked();
}

void SelectorDatagramTransport::flush_corked() {
  if (corked_ == 0) return;
  DatagramBatch& batch = backend_.datagram_batch();
  int count = std::exchange(corked_, 0);
  for (int i = 0; i < count; ++i) {
    if (batch.send_offsets[i] != DatagramBatch::kInPlace) {
      batch.send_vectors[i].iov_base = cork_bytes_.data() + batch.send_offsets[i];
    }
  }
  int next = 0;
  while (next < count) {
    int n = ::sendmmsg(fd_, batch.send_messages + next, static_cast<unsigned>(count - next),
                       MSG_NOSIGNAL);
    if (n > 0) {
      next += n;
      continue;
    }
    int error = n < 0 ? errno : EAGAIN;
    if (error == EINTR) continue;
    if (would_block(error)) {
      // The kernel's queue is full: the rest waits in the write buffer, in order.
      for (; next < count; ++next) {
        const msghdr& header = batch.send_messages[next].msg_hdr;
        std::optional<SocketAddress> to;
        if (header.msg_name != nullptr) {
          to.emplace(static_cast<const sockaddr*>(header.msg_name), header.msg_namelen);
        }
        const iovec& bytes = batch.send_vectors[next];
        buffer_.push_back(
            {std::string(static_cast<const char*>(bytes.iov_base), bytes.iov_len), std::move(to)});
        buffered_bytes_ += bytes.iov_len + kHeaderSize;
      }
      break;
    }
    // That datagram's own error; the others go on.
    report_later(errno_code(error));
    ++next;
  }
  cork_bytes_.clear();
  if (cork_bytes_.capacity() > kKeptCorkBytes) std::string().swap(cork_bytes_);
  if (!buffer_.empty()) {
    update_interest();
    maybe_pause_protocol();
  }
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
  // What datagram_received sent before closing goes before the end.
  flush_corked();
  closing_ = true;
  update_interest();  // reading stops now; buffered datagrams are still sent
  if (buffer_.empty()) schedule_connection_lost({});
}

void SelectorDatagramTransport::abort() { force_close({}); }

void SelectorDatagramTransport::force_close(std::error_code error) {
  if (lost_) return;
  // Sent before the abort (or the protocol's failure), as far as the caller
  // knows: they go out; only what the kernel had refused is dropped.
  flush_corked();
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
  corked_ = 0;
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
