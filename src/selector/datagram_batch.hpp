// DatagramBatch: the buffers of one recvmmsg() or sendmmsg() call. Not API.
//
// The readiness backend keeps one, shared by its datagram transports: a
// transport fills it and is done with it before its event handler returns,
// and one handler never runs inside another, so no two transports use it at
// once. recvmmsg() takes up to kMaxDatagrams datagrams into slots of the
// transport's size, carved from one block allocated on first use (2 MiB of
// address space; only the pages datagrams touch cost memory). sendmmsg() of
// the datagrams a transport queued while its protocol handled a batch (the
// replies of an echo) reuses the same headers once that batch is delivered.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <memory>

namespace tulip::detail {

class DatagramBatch {
 public:
  /// Datagrams per system call at most.
  static constexpr int kMaxDatagrams = 32;
  /// The receive slots' block.
  static constexpr std::size_t kBytes = 2 * 1024 * 1024;

  /// Sets up to kMaxDatagrams receive slots of `slot_size` bytes (at most
  /// kBytes in all, at least one) with room for each sender; returns how many.
  /// Only what the last call changed is set again when the size is the same.
  int prepare_receive(std::size_t slot_size) {
    if (slot_size != slot_size_) {
      if (!data) data = std::make_unique_for_overwrite<char[]>(kBytes);
      std::size_t fit = kBytes / slot_size;
      count_ = fit >= static_cast<std::size_t>(kMaxDatagrams) ? kMaxDatagrams
               : fit == 0                                     ? 1
                                                              : static_cast<int>(fit);
      for (int i = 0; i < count_; ++i) {
        vectors[i] = {data.get() + static_cast<std::size_t>(i) * slot_size, slot_size};
        messages[i].msg_hdr = {};
        messages[i].msg_hdr.msg_name = &senders[i];
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
      }
      slot_size_ = slot_size;
      filled_ = count_;
    }
    // The kernel wrote each received sender's length over the room it had.
    for (int i = 0; i < filled_; ++i) messages[i].msg_hdr.msg_namelen = sizeof(senders[i]);
    filled_ = 0;
    return count_;
  }

  /// recvmmsg() filled the first `count` messages.
  void received(int count) noexcept { filled_ = count < count_ ? count + 1 : count_; }

  /// True if `bytes` points into the receive slots (a datagram just received).
  bool holds(const char* bytes) const noexcept {
    return data && bytes >= data.get() && bytes < data.get() + kBytes;
  }

  // Receiving.
  mmsghdr messages[kMaxDatagrams];
  iovec vectors[kMaxDatagrams];
  sockaddr_storage senders[kMaxDatagrams];
  std::unique_ptr<char[]> data;
  // Sending: apart, so that a send in the middle of delivering a batch leaves
  // the received headers intact.
  mmsghdr send_messages[kMaxDatagrams];
  iovec send_vectors[kMaxDatagrams];
  sockaddr_storage send_names[kMaxDatagrams];
  // A queued reply's bytes: kInPlace when send_vectors already points at
  // them (a received slot), else their offset in the sender's own copy.
  static constexpr std::size_t kInPlace = static_cast<std::size_t>(-1);
  std::size_t send_offsets[kMaxDatagrams];

 private:
  std::size_t slot_size_ = 0;  // what the receive headers are set up for
  int count_ = 0;              // how many of them
  int filled_ = 0;             // messages whose name length needs setting again
};

}  // namespace tulip::detail
