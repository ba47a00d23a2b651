// SelectorConnect: a non-blocking connect() completed by writability.
//
// connect() returns EINPROGRESS; the socket becomes writable when the attempt
// ends, and SO_ERROR tells how. On success the registration is parked rather
// than removed, so the transport that takes the socket over re-arms it with
// one EPOLL_CTL_MOD instead of a DEL and an ADD.
#include <sys/socket.h>

#include <cerrno>

#include "selector/epoll_backend.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

class SelectorConnect final : public PendingConnect, private IoWatcher {
 public:
  using Done = InlineFunction<void(std::error_code)>;

  SelectorConnect(EpollBackend& backend, int fd, Done done)
      : backend_(backend), fd_(fd), done_(std::move(done)) {}
  ~SelectorConnect() override {
    backend_.set_interest(fd_, this, 0);  // no-op once finished (parked or never armed)
    immediate_.cancel();
  }

  void start(const SocketAddress& address) {
    int status;
    do {
      status = ::connect(fd_, address.data(), address.size());
    } while (status < 0 && errno == EINTR);
    if (status < 0 && errno == EINPROGRESS) {
      backend_.set_interest(fd_, this, kWritable);
      return;
    }
    // Finished already (loopback may connect at once, or fail at once): the
    // outcome still arrives from the ready queue, never inside start_connect.
    std::error_code outcome = status == 0 ? std::error_code{} : errno_code(errno);
    immediate_ = backend_.loop().call_soon([this, outcome] { finish(outcome); });
  }

 private:
  void on_io_event(std::uint32_t) override {
    std::error_code error = socket_error(fd_);
    if (!error) backend_.park(fd_);
    finish(error);
  }

  void finish(std::error_code outcome) {
    if (outcome) backend_.set_interest(fd_, this, 0);
    // `done` may destroy this object: nothing of it is touched afterwards.
    Done done = std::move(done_);
    done(outcome);
  }

  EpollBackend& backend_;
  int fd_;
  Done done_;
  Handle immediate_;
};

}  // namespace

std::unique_ptr<PendingConnect> EpollBackend::start_connect(
    int fd, const SocketAddress& address, InlineFunction<void(std::error_code)> done) {
  claim(fd);
  auto operation = std::make_unique<SelectorConnect>(*this, fd, std::move(done));
  operation->start(address);
  return operation;
}

}  // namespace tulip::detail
