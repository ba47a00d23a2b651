#include "uring/uring_datagram_transport.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>

#include "socket_ops.hpp"

namespace tulip::detail {
namespace {

// The receive size when the caller names none, and the largest taken: the
// epoll backend's, so that both deliver the same datagrams.
constexpr std::size_t kDefaultMaxDatagramSize = 256 * 1024;
// What precedes a datagram's bytes in its receive buffer: the kernel's
// recvmsg header, then room for the sender.
constexpr std::size_t kBufferHeader = sizeof(io_uring_recvmsg_out) + sizeof(sockaddr_storage);
// The datagram in flight keeps its string's memory up to this much between sends.
constexpr std::size_t kKeptSendCapacity = 64 * 1024;

std::size_t ring_bytes(unsigned entries) {
  auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::size_t bytes = entries * sizeof(io_uring_buf);
  return (bytes + page - 1) / page * page;
}

}  // namespace

std::shared_ptr<DatagramTransport> UringBackend::start_datagram_transport(
    DatagramSocket socket, InlineFunction<void()> on_made) {
  claim(socket.fd);
  auto transport = std::make_shared<UringDatagramTransport>(*this, std::move(socket));
  transport->start(std::move(on_made));
  return transport;
}

UringDatagramTransport::UringDatagramTransport(UringBackend& backend, DatagramSocket socket)
    : DatagramTransportBase(backend.loop(), socket), backend_(backend) {
  std::size_t max_size =
      std::min(socket.max_datagram_size == 0 ? kDefaultMaxDatagramSize : socket.max_datagram_size,
               kDefaultMaxDatagramSize);
  // No UDP datagram is longer than 64 KiB (65,507 payload bytes over IPv4),
  // so its receive buffers need not be longer either.
  int domain = get_int_option(fd_, SOL_SOCKET, SO_DOMAIN);
  slot_size_ =
      domain == AF_INET || domain == AF_INET6 ? std::min<std::size_t>(max_size, 65536) : max_size;
  buffer_size_ = kBufferHeader + slot_size_;
  // As many buffers as fit in kReceiveBytes, a power of two (the kernel's
  // rule for a buffer ring), at least one. The memory is only address space
  // until datagrams touch it.
  buffer_count_ = kMaxReceiveBuffers;
  while (buffer_count_ > 1 && buffer_count_ * buffer_size_ > kReceiveBytes) buffer_count_ /= 2;
}

UringDatagramTransport::~UringDatagramTransport() {
  // Normally release() ran long ago; this matters only when start() failed.
  if (!released_) close_socket();
  if (buffer_ring_ != nullptr) ::munmap(buffer_ring_, ring_bytes(buffer_count_));
}

void UringDatagramTransport::start(Callback on_made) {
  try {
    void* memory = ::mmap(nullptr, ring_bytes(buffer_count_), PROT_READ | PROT_WRITE,
                          MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (memory == MAP_FAILED) throw_os_error(errno, "mmap");
    buffer_ring_ = static_cast<io_uring_buf_ring*>(memory);
    buffers_ = std::make_unique_for_overwrite<char[]>(buffer_count_ * buffer_size_);
    io_uring_buf_ring_init(buffer_ring_);
    buffer_group_ = static_cast<int>(backend_.register_buffer_ring(buffer_ring_, buffer_count_));
    for (unsigned id = 0; id < buffer_count_; ++id) {
      io_uring_buf_ring_add(buffer_ring_, buffers_.get() + id * buffer_size_,
                            static_cast<unsigned>(buffer_size_), static_cast<unsigned short>(id),
                            io_uring_buf_ring_mask(buffer_count_), static_cast<int>(id));
    }
    io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(buffer_count_));
  } catch (...) {
    released_ = true;
    lost_ = closing_ = true;
    close_socket();
    throw;
  }
  // Datagrams that arrive before connection_made wait in the kernel until
  // the receive is armed (interest_changed, once reading starts).
  begin(std::move(on_made));
}

// ---- Requests ----------------------------------------------------------------------

void UringDatagramTransport::request_started() {
  if (requests_++ == 0) self_ = shared();
}

void UringDatagramTransport::request_finished() noexcept {
  if (--requests_ == 0) {
    // May destroy this object: the last thing done here.
    std::shared_ptr<DatagramTransport> last = std::move(self_);
  }
}

void UringDatagramTransport::submission_failed() {
  ExceptionContext details = context("Fatal error: cannot submit an io_uring request");
  details.exception = std::current_exception();
  loop_.call_exception_handler(details);
  force_close(std::make_error_code(std::errc::not_enough_memory));
}

// ---- Receiving ---------------------------------------------------------------------

void UringDatagramTransport::arm_receive() {
  io_uring_sqe* sqe = backend_.prepare(&receive_);
  // The kernel reads only the name and control lengths of this header: each
  // buffer holds a recvmsg header, the sender (this much room), the bytes.
  receive_header_ = {};
  receive_header_.msg_namelen = sizeof(sockaddr_storage);
  io_uring_prep_recvmsg_multishot(sqe, fd_, &receive_header_, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = static_cast<std::uint16_t>(buffer_group_);
  receiving_ = true;
  request_started();
}

void UringDatagramTransport::on_received(const io_uring_cqe& cqe) {
  bool final = (cqe.flags & IORING_CQE_F_MORE) == 0;
  if (final) receiving_ = false;
  if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) {
    deliver(cqe.flags >> IORING_CQE_BUFFER_SHIFT, cqe.res > 0 ? cqe.res : 0);
  } else if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED && !closing_) {
    // ECONNREFUSED from an ICMP port-unreachable, most often: about one
    // datagram, not the endpoint. Tell the protocol, go on.
    report_now(errno_code(-cqe.res));
  }
  if (!final) return;
  if (closing_) {
    release_buffer_group();
  } else if (cqe.res != 0 || (cqe.flags & IORING_CQE_F_BUFFER) != 0) {
    // Ended by the kernel (out of buffers, an error): go on. (A bare 0 is a
    // socket shut down for reading: nothing more will come.)
    try {
      arm_receive();
    } catch (const std::exception&) {
      submission_failed();
    }
  }
  request_finished();
}

void UringDatagramTransport::deliver(unsigned id, std::size_t length) {
  char* buffer = buffers_.get() + id * buffer_size_;
  io_uring_recvmsg_out* out =
      io_uring_recvmsg_validate(buffer, static_cast<int>(length), &receive_header_);
  if (out == nullptr || closing_ || !reading_started_) {
    recycle(id);  // nobody reads any more: dropped, as the kernel would
    return;
  }
  if ((out->flags & MSG_TRUNC) != 0) {
    // Delivering the buffer's worth of bytes as if they were the datagram
    // would corrupt it silently: drop it and say so.
    recycle(id);
    report_now(errno_code(EMSGSIZE));
    return;
  }
  std::string_view data(static_cast<const char*>(io_uring_recvmsg_payload(out, &receive_header_)),
                        out->payloadlen);
  SocketAddress sender(static_cast<const sockaddr*>(io_uring_recvmsg_name(out)),
                       std::min<socklen_t>(out->namelen, sizeof(sockaddr_storage)));
  try {
    protocol_->datagram_received(data, sender);
  } catch (...) {
    recycle(id);
    protocol_failed("Fatal error: protocol.datagram_received() call failed.");
    return;
  }
  // After the call: a reply sent from it (an echo) may point into the buffer.
  recycle(id);
}

void UringDatagramTransport::recycle(unsigned id) noexcept {
  io_uring_buf_ring_add(buffer_ring_, buffers_.get() + id * buffer_size_,
                        static_cast<unsigned>(buffer_size_), static_cast<unsigned short>(id),
                        io_uring_buf_ring_mask(buffer_count_), 0);
  io_uring_buf_ring_advance(buffer_ring_, 1);
}

void UringDatagramTransport::release_buffer_group() noexcept {
  if (buffer_group_ < 0) return;
  backend_.unregister_buffer_ring(static_cast<unsigned>(std::exchange(buffer_group_, -1)));
}

// ---- Sending -----------------------------------------------------------------------

void UringDatagramTransport::sendto(std::string_view data,
                                    const std::optional<SocketAddress>& address) {
  if (!accepts_datagram(data.size(), address)) return;
  if (buffer_.empty() && !sending_) {
    if (!corked_.empty() || backend_.defers_sends()) {
      cork(data, address);
      return;
    }
    if (try_send_now(data, address)) return;
  }
  // The kernel's queue is full, or datagrams wait already: after them, in order.
  queue_datagram(std::string(data), address);
  if (!sending_) {
    try {
      start_send();
    } catch (const std::exception&) {
      submission_failed();
      return;
    }
  }
  maybe_pause_protocol();
}

void UringDatagramTransport::start_send() {
  io_uring_sqe* sqe = backend_.prepare(&send_);
  in_flight_ = std::move(buffer_.front());
  buffer_.pop_front();
  send_vector_ = {in_flight_.data.data(), in_flight_.data.size()};
  send_header_ = {};
  if (in_flight_.to && !remote_) {
    send_header_.msg_name = const_cast<sockaddr*>(in_flight_.to->data());
    send_header_.msg_namelen = in_flight_.to->size();
  }
  send_header_.msg_iov = &send_vector_;
  send_header_.msg_iovlen = 1;
  io_uring_prep_sendmsg(sqe, fd_, &send_header_, MSG_NOSIGNAL);
  sending_ = true;
  request_started();
}

void UringDatagramTransport::on_sent(const io_uring_cqe& cqe) {
  sending_ = false;
  // Dropped with the queue already if the endpoint was lost meanwhile.
  if (!lost_) buffered_bytes_ -= in_flight_.data.size() + kHeaderSize;
  in_flight_.data.clear();
  in_flight_.to.reset();
  if (in_flight_.data.capacity() > kKeptSendCapacity) std::string().swap(in_flight_.data);
  if (!lost_) {
    // That datagram's own error: it is dropped, the protocol told, the rest goes on.
    if (cqe.res < 0 && cqe.res != -ECANCELED) report_now(errno_code(-cqe.res));
    if (!lost_) send_queued();
    maybe_resume_protocol();
    if (!lost_ && closing_ && !sending_ && buffer_.empty()) schedule_connection_lost({});
  }
  request_finished();
}

void UringDatagramTransport::send_queued() {
  // The socket took a datagram, so it has room again: the queue goes now, as
  // on epoll when the socket turns writable (the sizes and flow control
  // change at once), and a request waits for room only when the kernel's
  // queue is full again.
  while (!buffer_.empty() && !lost_) {
    const PendingDatagram& front = buffer_.front();
    ssize_t n = send_one(front.data, front.to);
    int error = n < 0 ? static_cast<int>(-n) : 0;
    if (would_block(error)) {
      try {
        start_send();
      } catch (const std::exception&) {
        submission_failed();
      }
      return;
    }
    pop_sent();
    if (error != 0) report_now(errno_code(error));  // that datagram's own error; the rest go on
  }
}

void UringDatagramTransport::cork(std::string_view data, const std::optional<SocketAddress>& to) {
  if (corked_.empty()) backend_.send_after_handlers(this, shared());
  corked_.push_back({cork_bytes_.size(), data.size(), remote_ ? std::nullopt : to});
  cork_bytes_.append(data);
}

void UringDatagramTransport::send_batch() noexcept {
  constexpr std::size_t kBatch = 32;
  // Taken out first: a failure below closes the endpoint, which sends the batch.
  std::vector<Corked> batch = std::move(corked_);
  corked_.clear();
  std::string bytes = std::move(cork_bytes_);
  cork_bytes_.clear();
  std::size_t next = 0;
  while (next < batch.size() && !lost_) {
    mmsghdr messages[kBatch];
    iovec vectors[kBatch];
    std::size_t count = std::min(kBatch, batch.size() - next);
    for (std::size_t i = 0; i < count; ++i) {
      const Corked& datagram = batch[next + i];
      vectors[i] = {bytes.data() + datagram.offset, datagram.size};
      messages[i] = {};
      if (datagram.to) {
        messages[i].msg_hdr.msg_name = const_cast<sockaddr*>(datagram.to->data());
        messages[i].msg_hdr.msg_namelen = datagram.to->size();
      }
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::sendmmsg(fd_, messages, static_cast<unsigned>(count), MSG_NOSIGNAL);
    if (n > 0) {
      next += static_cast<std::size_t>(n);
      continue;
    }
    int error = n < 0 ? errno : EAGAIN;
    if (error == EINTR) continue;
    if (!would_block(error)) {
      report_later(errno_code(error));  // that datagram's own error; the others go on
      ++next;
      continue;
    }
    // The kernel's queue is full: the rest waits in the queue, in order.
    for (; next < batch.size(); ++next) {
      const Corked& datagram = batch[next];
      queue_datagram(bytes.substr(datagram.offset, datagram.size), datagram.to);
    }
    try {
      start_send();
    } catch (const std::exception&) {
      submission_failed();
    }
    maybe_pause_protocol();
  }
  // The memory is kept for the next batch, unless a large one made it large.
  if (corked_.empty()) {
    batch.clear();
    corked_.swap(batch);
    bytes.clear();
    if (bytes.capacity() <= kKeptSendCapacity) cork_bytes_.swap(bytes);
  }
}

// ---- Interest and release ------------------------------------------------------------

void UringDatagramTransport::interest_changed() noexcept {
  if (closing_) {
    // Reading stops now (queued datagrams are still sent): the receive is
    // cancelled, once; its last completion gives the buffer group back.
    if (receiving_ && !receive_cancelled_) {
      receive_cancelled_ = true;
      backend_.cancel(&receive_);
    }
    return;
  }
  // Reading starts (connection_made has run): the receive is armed.
  if (reading_started_ && !receiving_) {
    try {
      arm_receive();
    } catch (const std::exception&) {
      submission_failed();
    }
  }
}

void UringDatagramTransport::close_socket() noexcept {
  if (fd_ >= 0) {
    // Before the descriptor is closed: a request in flight holds the socket
    // open (its port bound, its path taken) until the kernel lets go of it.
    if (receiving_) backend_.cancel_now(&receive_);
    if (sending_) backend_.cancel_now(&send_);
    backend_.close_socket(std::exchange(fd_, -1));
  }
  // The receive's last completion may still be queued: it gives the group back then.
  if (!receiving_) release_buffer_group();
  run_on_release();
}

void UringDatagramTransport::release_resources() noexcept {
  // Only a loop's shutdown leaves datagrams gathered: they are not sent.
  corked_.clear();
  close_socket();
}

}  // namespace tulip::detail
