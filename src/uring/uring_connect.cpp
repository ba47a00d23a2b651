// UringConnect: a connect() submitted as IORING_OP_CONNECT.
//
// The request (with the address the kernel reads) is a heap object that
// outlives the operation when it has to: destroying the operation cancels the
// request and leaves it ownerless; it frees itself when it completes.

#include "socket_ops.hpp"
#include "uring/uring_backend.hpp"

namespace tulip::detail {
namespace {

class UringConnect;

struct ConnectRequest final : Completion {
  ConnectRequest(UringConnect* connect, const SocketAddress& target)
      : owner(connect), address(target) {}
  void complete(const io_uring_cqe& cqe) override;
  UringConnect* owner;    // null once the operation is gone
  SocketAddress address;  // read by the kernel while the request is in flight
};

class UringConnect final : public PendingConnect {
 public:
  using Done = InlineFunction<void(std::error_code)>;

  UringConnect(UringBackend& backend, Done done) : backend_(backend), done_(std::move(done)) {}
  ~UringConnect() override {
    if (request_ != nullptr) {
      request_->owner = nullptr;
      backend_.cancel(request_);
    }
  }

  void start(int fd, const SocketAddress& address) {
    auto request = std::make_unique<ConnectRequest>(this, address);
    io_uring_sqe* sqe = backend_.prepare(request.get());
    io_uring_prep_connect(sqe, fd, request->address.data(), request->address.size());
    request_ = request.release();
  }

  void finish(int result) {
    request_ = nullptr;
    // `done` may destroy this object: nothing of it is touched afterwards.
    Done done = std::move(done_);
    done(result >= 0 ? std::error_code{} : errno_code(-result));
  }

 private:
  UringBackend& backend_;
  Done done_;
  ConnectRequest* request_ = nullptr;  // in flight
};

void ConnectRequest::complete(const io_uring_cqe& cqe) {
  std::unique_ptr<ConnectRequest> self(this);  // freed whatever happens below
  if (owner != nullptr) owner->finish(cqe.res);
}

}  // namespace

std::unique_ptr<PendingConnect> UringBackend::start_connect(
    int fd, const SocketAddress& address, InlineFunction<void(std::error_code)> done) {
  claim(fd);
  auto operation = std::make_unique<UringConnect>(*this, std::move(done));
  operation->start(fd, address);
  return operation;
}

}  // namespace tulip::detail
