// UringListener: a listening socket that accepts with one multishot accept
// request, re-armed whenever the kernel ends it.
//
// The request outlives the listener when it has to: destroying the listener
// cancels it and leaves it ownerless; it frees itself at its final
// completion, closing any connection accepted in between.

#include <sys/socket.h>

#include <cerrno>

#include "server_access.hpp"
#include "socket_ops.hpp"
#include "tulip/server.hpp"
#include "uring/uring_backend.hpp"

namespace tulip::detail {
namespace {

class UringListener;

struct AcceptRequest final : Completion {
  explicit AcceptRequest(UringListener* listener) : owner(listener) {}
  void complete(const io_uring_cqe& cqe) override;
  UringListener* owner;  // null once the listener is gone
};

class UringListener final : public Listener {
 public:
  UringListener(UringBackend& backend, Server& server, int fd)
      : backend_(backend), server_(server), fd_(fd), address_(SocketAddress::local_of(fd)) {
    backend_.claim(fd_);
  }
  ~UringListener() override {
    if (request_ != nullptr) {
      request_->owner = nullptr;
      backend_.cancel(request_);
      // The accept request holds the socket open until its cancellation
      // completes: stop listening now, so that new clients are refused.
      ::shutdown(fd_, SHUT_RDWR);
    }
    backend_.close_socket(fd_);
  }

  int fd() const noexcept override { return fd_; }
  const SocketAddress& address() const noexcept override { return address_; }
  void set_accepting(bool accepting) override {
    accepting_ = accepting;
    if (accepting && request_ == nullptr) {
      arm();
    } else if (!accepting && request_ != nullptr && !cancelled_) {
      backend_.cancel(request_);
      cancelled_ = true;
    }
  }

  void on_completion(const io_uring_cqe& cqe) {
    bool final = (cqe.flags & IORING_CQE_F_MORE) == 0;
    if (final) {
      delete request_;
      request_ = nullptr;
      cancelled_ = false;
    }
    // A protocol factory may close the server from inside on_accepted(): that
    // destroys this listener. Keep the server alive, and touch no member once
    // it has stopped serving.
    std::shared_ptr<Server> server = server_.shared_from_this();
    if (cqe.res >= 0) {
      if (!accepting_) {
        close_fd(cqe.res);  // accepted while the server paused: refused
      } else {
        // Multishot accept does not tell the peer: the transport asks the socket.
        ServerAccess::on_accepted(*server, cqe.res, SocketAddress{});
        if (!server->is_serving()) return;  // `this` may be gone
      }
    } else if (cqe.res != -ECANCELED && cqe.res != -EINTR && cqe.res != -ECONNABORTED &&
               cqe.res != -EPROTO && cqe.res != -EAGAIN) {
      // Out of descriptors or memory: back off, the server resumes after a delay.
      ServerAccess::pause_accepting(*server, -cqe.res);
      return;
    }
    if (final && accepting_) arm();
  }

 private:
  void arm() {
    auto request = std::make_unique<AcceptRequest>(this);
    io_uring_sqe* sqe = backend_.prepare(request.get());
    io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    request_ = request.release();
    cancelled_ = false;
  }

  UringBackend& backend_;
  Server& server_;
  int fd_;
  SocketAddress address_;
  AcceptRequest* request_ = nullptr;  // in flight
  bool cancelled_ = false;            // its cancellation was asked for
  bool accepting_ = false;
};

void AcceptRequest::complete(const io_uring_cqe& cqe) {
  if (owner != nullptr) {
    owner->on_completion(cqe);  // deletes this request at its final completion
    return;
  }
  if (cqe.res >= 0) close_fd(cqe.res);  // the listener is gone
  if ((cqe.flags & IORING_CQE_F_MORE) == 0) delete this;
}

}  // namespace

std::unique_ptr<Listener> UringBackend::make_listener(Server& server, int fd, int /*backlog*/) {
  return std::make_unique<UringListener>(*this, server, fd);
}

}  // namespace tulip::detail
