#include "selector/selector_datagram_transport.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "socket_ops.hpp"

namespace tulip::detail {

std::shared_ptr<DatagramTransport> EpollBackend::start_datagram_transport(
    DatagramSocket socket, InlineFunction<void()> on_made) {
  claim(socket.fd);
  auto transport = std::make_shared<SelectorDatagramTransport>(*this, std::move(socket));
  transport->start(std::move(on_made));
  return transport;
}

SelectorDatagramTransport::SelectorDatagramTransport(EpollBackend& backend, DatagramSocket socket)
    : DatagramTransportBase(backend.loop(), socket),
      backend_(backend),
      max_size_(std::min(
          socket.max_datagram_size == 0 ? EpollBackend::kReadBufferSize : socket.max_datagram_size,
          EpollBackend::kReadBufferSize)) {
  // No UDP datagram is longer than 64 KiB (65,507 payload bytes over IPv4),
  // so its receive slots need not be longer either.
  int domain = get_int_option(fd_, SOL_SOCKET, SO_DOMAIN);
  slot_size_ =
      domain == AF_INET || domain == AF_INET6 ? std::min<std::size_t>(max_size_, 65536) : max_size_;
}

SelectorDatagramTransport::~SelectorDatagramTransport() {
  // Normally release() ran long ago; this matters only when start() failed.
  if (!released_) close_socket();
}

void SelectorDatagramTransport::close_socket() noexcept {
  if (fd_ >= 0) backend_.close_socket(std::exchange(fd_, -1));
  run_on_release();
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
  // Datagrams that arrive before connection_made wait in the kernel:
  // level-triggered readiness reports them again once reading has started.
  begin(std::move(on_made));
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
      const PendingDatagram& pending = buffer_[static_cast<std::size_t>(i)];
      prepare_send(i, pending.data.data(), pending.data.size(), pending.to);
    }
    int n = ::sendmmsg(fd_, batch.send_messages, static_cast<unsigned>(count), MSG_NOSIGNAL);
    if (n < 0) {
      int error = errno;
      if (error == EINTR) continue;
      if (would_block(error)) break;
      // The first datagram's own error: drop it, tell the protocol, go on.
      pop_sent();
      report_now(errno_code(error));
      if (lost_) return;  // the protocol aborted the endpoint
      continue;
    }
    for (int i = 0; i < n; ++i) pop_sent();
  }
  maybe_resume_protocol();
  if (lost_ || !buffer_.empty()) return;
  interest_changed();
  if (closing_) schedule_connection_lost({});
}

// ---- Sending ---------------------------------------------------------------------

void SelectorDatagramTransport::sendto(std::string_view data,
                                       const std::optional<SocketAddress>& address) {
  if (!accepts_datagram(data.size(), address)) return;
  if (buffer_.empty()) {
    if (delivering_) {
      // Inside datagram_received: it leaves with the batch's other replies.
      cork(data, address);
      return;
    }
    if (try_send_now(data, address)) return;
  }
  queue_datagram(std::string(data), address);
  interest_changed();
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
        queue_datagram(std::string(static_cast<const char*>(bytes.iov_base), bytes.iov_len),
                       std::move(to));
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
    interest_changed();
    maybe_pause_protocol();
  }
}

void SelectorDatagramTransport::interest_changed() noexcept {
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

void SelectorDatagramTransport::release_resources() noexcept {
  interest_ = 0;
  // Only a loop's shutdown leaves replies gathered: they are not sent.
  corked_ = 0;
  close_socket();
}

}  // namespace tulip::detail
