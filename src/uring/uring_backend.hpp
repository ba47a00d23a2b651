// UringBackend: the completion backend, on io_uring (liburing). Not API.
//
// What runs natively on the ring:
//  * waiting: io_uring_submit_and_wait_timeout with the loop's poll timeout,
//    so that the operations handlers queued during an iteration are submitted
//    in the same system call that waits for the next completions;
//  * cross-thread wakeups: a read request on an eventfd, re-armed after each;
//  * stream transports on sockets (TCP and Unix, uring_socket_transport.cpp):
//    multishot receive into the provided buffer ring below (a poll request
//    and a recv() into the protocol's memory for a BufferedProtocol), one
//    send in flight per socket;
//  * pipe transports (uring_pipe_transport.cpp, the same transport class):
//    read requests into that buffer ring, write requests, a poll request
//    watching a write end's reader;
//  * deferred sends: a write() made while completion handlers run is a send
//    request, not a send() call (defers_sends); dispatch() submits those
//    requests at once when the loop would run anything before its next wait,
//    and leaves them to that wait otherwise, so that one io_uring_enter per
//    iteration carries them (docs/backends.md, "When a write reaches the
//    kernel");
//  * datagram transports (UDP and Unix, uring_datagram_transport.cpp):
//    multishot recvmsg into a buffer ring of the endpoint's own (sized to
//    its receive size; see register_buffer_ring), sendto() at once (the
//    datagrams sent from completion handlers with one sendmmsg once they are
//    done: send_after_handlers) and a sendmsg request for what the kernel
//    could not take;
//  * listeners (multishot accept) and connects (IORING_OP_CONNECT);
//  * zero-copy sends (IORING_OP_SEND_ZC) for a TCP transport's send requests
//    of at least EventLoopOptions::zero_copy_send_threshold bytes
//    (uring_zero_copy_send.cpp; off by default).
// What is delegated to a readiness backend kept inside this one (the epoll
// backend, reached only through the IoBackend seam): the kernel sendfile path
// (a transport of this backend takes sendfile's buffered path), and
// set_interest (add_reader, add_writer, the sock_* operations, a child's
// pidfd). The ring watches that backend's epoll
// descriptor with a poll request, so its events arrive through the same wait.
//
// Lifetime: every request in flight carries a Completion* as its user_data.
// What it points to stays alive until its last completion has arrived: a
// transport holds a reference to itself while it has requests in flight, a
// listener's or connect's request is a heap object that outlives its owner
// and frees itself when its final completion arrives. Closing an owner
// cancels its requests (by user_data: the descriptor number may already be
// reused). The destructor waits for every request to complete.
//
// The completion queue is twice the submission queue and the kernel keeps
// what does not fit (IORING_FEAT_NODROP, required): completions are never lost.
//
// Thread-safety: wakeup() from any thread; everything else on the loop's thread.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "io_backend.hpp"
#include "uring/send_buffer_pool.hpp"

// liburing 2.3's header predates kernel 6.2's zero-copy usage reporting: a
// zero-copy send asking for it gets a notification whose result says whether
// the kernel copied the bytes after all.
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

namespace tulip::detail {

/// What a request's user_data points to: told of each of its completions.
class Completion {
 public:
  /// `cqe` is one completion of this request; IORING_CQE_F_MORE in its flags
  /// says more follow. The object may destroy itself inside this call.
  virtual void complete(const io_uring_cqe& cqe) = 0;

 protected:
  ~Completion() = default;
};

/// What sends, once the completion handlers of a drain are done, what they
/// gathered (a datagram transport's replies: one sendmmsg for a batch).
class BatchSender {
 public:
  /// Runs once after the handlers, before anything else runs.
  virtual void send_batch() noexcept = 0;

 protected:
  ~BatchSender() = default;
};

class UringBackend final : public IoBackend, private Completion {
 public:
  /// Each provided receive buffer holds this much; one completion carries at most one.
  static constexpr unsigned kReceiveBufferSize = 16 * 1024;
  /// Buffers in the provided buffer ring (a power of two).
  static constexpr unsigned kReceiveBufferCount = 256;
  /// The provided buffer ring's group id.
  static constexpr unsigned kBufferGroup = 0;

  /// Sets the ring up (SINGLE_ISSUER|DEFER_TASKRUN, else COOP_TASKRUN, else
  /// plain), with the options that concern it (the zero-copy send threshold).
  /// Throws OSError if the kernel refuses io_uring altogether.
  UringBackend(EventLoop& loop, const EventLoopOptions& options);
  ~UringBackend() override;

  const char* name() const noexcept override { return "io_uring"; }
  void poll(int timeout_ms) override;
  void poll_and_dispatch(int timeout_ms) override;
  void dispatch() override;
  void wakeup() noexcept override;
  void set_interest(int fd, IoWatcher* watcher, std::uint32_t interest) override;
  bool owns(int fd) const noexcept override;
  std::shared_ptr<Transport> start_stream_transport(StreamSocket socket,
                                                    InlineFunction<void()> on_made) override;
  std::shared_ptr<Transport> start_pipe_transport(PipeEnd pipe,
                                                  InlineFunction<void()> on_made) override;
  std::shared_ptr<DatagramTransport> start_datagram_transport(
      DatagramSocket socket, InlineFunction<void()> on_made) override;
  std::unique_ptr<Listener> make_listener(Server& server, int fd, int backlog) override;
  std::unique_ptr<PendingConnect> start_connect(
      int fd, const SocketAddress& address, InlineFunction<void(std::error_code)> done) override;
  bool start_sendfile(Transport& transport, SendfileJob& job) override;
  void close_socket(int fd) noexcept override;

  // ---- For this backend's transports, listeners and connects ---------------------

  EventLoop& loop() const noexcept { return loop_; }
  /// A submission queue entry whose user_data is `completion`; submits what is
  /// queued first if the queue is full. Counts the request as in flight until
  /// its final completion (see finished()).
  io_uring_sqe* prepare(Completion* completion);
  /// Asks the kernel to cancel the request of `completion` (its completion
  /// then arrives with -ECANCELED, or as it was already going to).
  void cancel(Completion* completion);
  /// Marks `fd` as owned by one of this backend's objects (see owns()).
  void claim(int fd);
  /// The data of provided buffer `id`, which a receive completion names.
  char* receive_buffer(unsigned id) noexcept {
    return buffers_.get() + static_cast<std::size_t>(id) * kReceiveBufferSize;
  }
  /// Gives provided buffer `id` back to the kernel once its data was consumed.
  void recycle_buffer(unsigned id) noexcept;
  /// True while completion handlers run. A write made then goes to the ring
  /// as a send request instead of a send() call: it is submitted before the
  /// loop runs anything else (see dispatch()), so no protocol can tell.
  bool defers_sends() const noexcept { return dispatching_; }
  /// Changes whenever prepared requests are handed to the kernel: a request
  /// prepared when this had the same value is not submitted yet, and its
  /// entry may still be changed.
  std::uint64_t submissions() const noexcept { return submissions_; }
  /// The memory of large send requests, shared by the loop's transports.
  SendBufferPool& send_buffers() noexcept { return send_buffers_; }
  /// Hands the prepared requests to the kernel now, if there are any (before
  /// a descriptor they name is closed, for one).
  void submit_prepared() noexcept;
  /// False until the loop first waits (the ring starts disabled: see
  /// setup_ring): submit_prepared() cannot hand anything over before.
  bool ring_enabled() const noexcept { return (ring_.flags & IORING_SETUP_R_DISABLED) == 0; }
  /// Has `sender`'s send_batch() run once the completion handlers running
  /// now are done (only while defers_sends()); `owner` keeps it alive until then.
  void send_after_handlers(BatchSender* sender, std::shared_ptr<void> owner) {
    batch_senders_.emplace_back(sender, std::move(owner));
  }
  /// Cancels the submitted request of `completion` and returns once the
  /// kernel has let go of it (its completion, -ECANCELED or final, is then
  /// queued), so that closing its descriptor next really closes the socket;
  /// an asynchronous cancel() where the kernel has no synchronous one. A
  /// ring still disabled is enabled first (by the loop's thread, the caller).
  void cancel_now(Completion* completion) noexcept;
  /// Registers the provided buffer ring at `ring_address` (page-aligned,
  /// `entries` a power of two) under a buffer group of its own; returns the
  /// group. Throws OSError if the kernel refuses.
  unsigned register_buffer_ring(void* ring_address, unsigned entries);
  /// Unregisters a group of register_buffer_ring, once no request uses it.
  void unregister_buffer_ring(unsigned group) noexcept;

  // ---- Zero-copy sends (uring_zero_copy_send.cpp) -------------------------------------

  /// The size from which a TCP transport's send request is a zero-copy send;
  /// 0: never (EventLoopOptions::zero_copy_send_threshold, or the kernel
  /// refused the operation).
  std::size_t zero_copy_threshold() const noexcept { return zero_copy_threshold_; }
  /// The zero-copy flags to ask for: usage reporting, until the kernel says
  /// it does not know it (before 6.2).
  unsigned zero_copy_flags() const noexcept { return zero_copy_flags_; }
  /// A zero-copy send failed with EINVAL: the kernel does not know the flags
  /// asked for (usage reporting is dropped) or, asked for none, the operation
  /// (zero-copy sends stop for this loop).
  void zero_copy_refused() noexcept;
  /// How many zero-copy send requests this loop's transports made (a
  /// figure for tests: loopback copies anyway, so nothing else shows it).
  std::uint64_t zero_copy_sends() const noexcept { return zero_copy_sends_; }
  void count_zero_copy_send() noexcept { ++zero_copy_sends_; }

 private:
  // The wakeup eventfd's read request, and the readiness backend's poll request.
  void complete(const io_uring_cqe& cqe) override;
  void arm_wakeup_read();
  void arm_readiness_poll();
  void wait(int timeout_ms);
  // Enables the ring if it is still disabled (see setup_ring); 0 or an errno.
  int enable_ring() noexcept;
  void drain_completions();

  class ReadinessPoll;

  EventLoop& loop_;
  io_uring ring_{};
  bool ring_ready_ = false;
  int wakeup_fd_ = -1;
  std::uint64_t wakeup_value_ = 0;  // the eventfd read's target
  std::unique_ptr<IoBackend> readiness_;
  std::unique_ptr<ReadinessPoll> readiness_poll_;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  std::unique_ptr<char[]> buffers_;
  std::vector<bool> owned_;  // indexed by fd
  std::size_t in_flight_ = 0;
  std::uint64_t submissions_ = 0;                  // see submissions()
  bool readiness_pending_ = false;                 // the epoll descriptor reported events
  bool dispatching_ = false;                       // completion handlers are running (defers_sends)
  unsigned next_buffer_group_ = kBufferGroup + 1;  // register_buffer_ring's next new group
  std::vector<unsigned> free_buffer_groups_;       // groups unregistered, to reuse
  std::vector<std::pair<BatchSender*, std::shared_ptr<void>>> batch_senders_;
  SendBufferPool send_buffers_;
  std::size_t zero_copy_threshold_ = 0;  // see zero_copy_threshold()
  unsigned zero_copy_flags_ = 0;         // see zero_copy_flags()
  std::uint64_t zero_copy_sends_ = 0;    // see zero_copy_sends()
};

/// Makes an io_uring backend; throws OSError if the kernel refuses io_uring
/// (too old, disabled by sysctl, seccomp or a container).
std::unique_ptr<IoBackend> make_uring_backend(EventLoop& loop, const EventLoopOptions& options);

}  // namespace tulip::detail
