// UringSocketTransport's zero-copy sends (uring_socket_transport.hpp).
//
// A TCP transport's send request of at least the loop's threshold
// (EventLoopOptions::zero_copy_send_threshold) is an IORING_OP_SEND_ZC: the
// kernel sends from the request's memory instead of copying it into socket
// buffers, and holds that memory until it has no further use for it (over a
// NIC, until the peer acknowledged the bytes), which it says with a second
// completion, the notification (IORING_CQE_F_NOTIF). So:
//  * the bytes move out of the transport into the request (ZeroCopySend), a
//    heap object that frees itself when the notification arrives: closing,
//    aborting or destroying the transport, or closing the loop, never frees
//    memory the kernel may still read (the loop's close waits for every
//    completion, notifications included, as for any request);
//  * the first completion is the send's: the transport goes on from it as
//    after a plain send (the next send, resume_writing, a close that waited
//    for the bytes, connection_lost), without waiting for the notification,
//    which over a NIC comes a round trip later. get_write_buffer_size()
//    counts the request's bytes until that first completion, as for a send;
//  * the request asks the kernel to report whether it copied after all
//    (IORING_SEND_ZC_REPORT_USAGE, 6.2+). On loopback it always does (the
//    receiving socket cannot keep pages the sender may reuse); a transport
//    told so stops sending zero-copy, so that it does not pay the
//    notification for nothing on every send;
//  * a kernel that refuses the request (EINVAL: usage reporting unknown
//    before 6.2, or no SEND_ZC at all; EOPNOTSUPP; ENOMEM or ENOBUFS when the
//    pages cannot be pinned within RLIMIT_MEMLOCK) sent nothing: the bytes go
//    again by a plain send, and zero-copy is dropped where the refusal says.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <utility>

#include "socket_ops.hpp"
#include "uring/uring_socket_transport.hpp"

namespace tulip::detail {

void UringSocketTransport::start_zero_copy_send() {
  auto request = std::make_unique<ZeroCopySend>(*this, std::move(sent_), sent_offset_);
  sent_.clear();  // moved from: empty it for certain, the next send starts afresh
  sent_offset_ = 0;
  std::string_view bytes = request->unsent();
  io_uring_sqe* sqe = backend_.prepare(request.get());
  io_uring_prep_send_zc(sqe, fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL,
                        backend_.zero_copy_flags());
  // From here the request is the kernel's until its completions have come:
  // it deletes itself then (ZeroCopySend::complete).
  zero_copy_ = request.release();
  zero_copy_bytes_ = bytes.size();
  backend_.count_zero_copy_send();
  sending_ = true;
  request_started();
}

void UringSocketTransport::ZeroCopySend::complete(const io_uring_cqe& cqe) {
  if ((cqe.flags & IORING_CQE_F_NOTIF) != 0) {
    // The kernel let go of the bytes: they go with this request. The
    // transport, if still there, learns whether the kernel had copied them.
    std::shared_ptr<Transport> transport = notify_.lock();
    bool copied = (static_cast<std::uint32_t>(cqe.res) & IORING_NOTIF_USAGE_ZC_COPIED) != 0;
    delete this;
    if (transport) static_cast<UringSocketTransport&>(*transport).on_zero_copy_released(copied);
    return;
  }
  // The send's own completion. A notification follows if F_MORE says so
  // (even after an error or a cancellation): until then the bytes stay.
  bool notification_follows = (cqe.flags & IORING_CQE_F_MORE) != 0;
  // Without a notification this was the request's last completion: it goes
  // once the transport is done with it, even if the transport throws.
  struct DeleteAtEnd {
    ZeroCopySend* request;
    ~DeleteAtEnd() { delete request; }
  } last{notification_follows ? nullptr : this};
  UringSocketTransport& owner = *std::exchange(owner_, nullptr);
  if (notification_follows) notify_ = owner.shared();
  owner.on_zero_copy_sent(*this, cqe);  // may destroy the transport, never this request
}

void UringSocketTransport::on_zero_copy_sent(ZeroCopySend& request, const io_uring_cqe& cqe) {
  sending_ = false;
  zero_copy_ = nullptr;
  zero_copy_bytes_ = 0;
  std::string_view rest = request.unsent();
  if (cqe.res >= 0) {
    rest.remove_prefix(std::min(static_cast<std::size_t>(cqe.res), rest.size()));
  } else if (cqe.res == -EINVAL) {
    // Nothing was sent: the kernel does not know what was asked (see
    // UringBackend::zero_copy_refused); the bytes go again.
    backend_.zero_copy_refused();
  } else if (cqe.res == -EOPNOTSUPP || cqe.res == -ENOMEM || cqe.res == -ENOBUFS) {
    // Nothing was sent: this socket cannot send zero-copy, or the kernel
    // cannot pin more pages for it. The bytes go again, copied, as every
    // send of this transport from now on.
    zero_copy_allowed_ = false;
  } else {
    if (cqe.res != -ECANCELED && !lost_) socket_failed(errno_code(-cqe.res));
    rest = {};
  }
  if (!rest.empty() && !lost_) {
    // What the kernel did not take goes first with the next send (a short
    // send is rare: the kernel retries a stream socket's until all is sent,
    // unless an error or a cancellation stops it). It is copied: the
    // request's memory stays the kernel's until the notification.
    sent_.assign(rest);
    sent_offset_ = 0;
  }
  after_send();
}

void UringSocketTransport::on_zero_copy_released(bool copied) noexcept {
  // Copied (loopback, or a device that cannot send from user pages): the
  // notification was overhead with nothing saved; later sends copy at once.
  if (copied) zero_copy_allowed_ = false;
}

void UringBackend::zero_copy_refused() noexcept {
  if (zero_copy_flags_ != 0) {
    zero_copy_flags_ = 0;  // before 6.2: no usage reporting
  } else {
    zero_copy_threshold_ = 0;  // before 6.0: no zero-copy send at all
  }
}

}  // namespace tulip::detail
