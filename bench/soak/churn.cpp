#include "churn.hpp"

#include <exception>
#include <memory>
#include <utility>

#include "tulip/future.hpp"

namespace tulip::soak {
namespace {

// One short connection: one message out, its echo back, then close. The
// transport owns it; `churn` outlives it (the run waits for Churn::idle()).
class ChurnClient final : public Protocol {
 public:
  ChurnClient(Churn& churn, SoakEvents& events, std::uint32_t id, std::size_t size)
      : churn_(churn), events_(events), id_(id), size_(size) {}

  void connection_made(Transport& transport) override {
    transport_ = &transport;
    transport.write(stream_bytes(id_, 0, size_));
  }
  void data_received(std::string_view data) override {
    if (corrupted_) return;
    if (received_ + data.size() > size_ || data != stream_bytes(id_, received_, data.size())) {
      corrupted_ = true;
      events_.error("churned connection " + std::to_string(id_) +
                    ": the echo differs from the bytes sent");
      transport_->abort();
      return;
    }
    received_ += data.size();
    events_.on_echoed(data.size());
    // With TLS, close() sends close_notify and connection_lost waits for the peer's.
    if (received_ == size_) transport_->close();
  }
  void connection_lost(std::error_code error) override {
    churn_.finished(error, !corrupted_ && received_ == size_);
  }

 private:
  Churn& churn_;
  SoakEvents& events_;
  std::uint32_t id_;
  std::size_t size_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
  std::size_t received_ = 0;
  bool corrupted_ = false;
};

}  // namespace

Churn::Churn(EventLoop& loop, SoakEvents& events, ConnectOptions connect, std::uint16_t port,
             double per_second, int concurrency, std::size_t message_size, std::uint32_t first_id)
    : loop_(loop),
      events_(events),
      connect_(std::move(connect)),
      port_(port),
      per_second_(per_second),
      concurrency_(concurrency),
      message_size_(message_size),
      next_id_(first_id) {}

void Churn::tick(double now) {
  if (per_second_ <= 0) return;
  // Credit by the time that really passed, as the long-lived traffic does.
  if (last_tick_ > 0) credit_ += per_second_ * (now - last_tick_);
  last_tick_ = now;
  while (credit_ >= 1) {
    credit_ -= 1;
    if (in_flight_ >= concurrency_) {
      ++skipped_;
      continue;
    }
    launch();
  }
}

void Churn::launch() {
  std::uint32_t id = next_id_++;
  std::size_t size = message_size_ / 2 + (id * 7919ULL) % message_size_;
  ++in_flight_;
  auto future = loop_.create_connection(
      [this, id, size] { return std::make_shared<ChurnClient>(*this, events_, id, size); },
      "127.0.0.1", port_, connect_);
  future.add_done_callback([this](Future<Connection<ChurnClient>>& done) {
    // A connection or handshake that fails never reaches the protocol (no
    // connection_lost follows), so it is counted here.
    if (std::exception_ptr failure = done.exception()) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        events_.error(std::string("a churned connection failed: ") + e.what());
      }
      --in_flight_;
      ++failed_;
    }
  });
}

void Churn::finished(std::error_code cause, bool complete) {
  --in_flight_;
  if (cause) {
    ++failed_;
    events_.error("a churned connection closed with an error: " + cause.message());
  } else if (!complete) {
    ++failed_;
    events_.error("a churned connection ended before its whole echo came back");
  } else {
    ++completed_;
  }
}

}  // namespace tulip::soak
