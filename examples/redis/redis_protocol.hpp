// RedisProtocol: a pipelining Redis client as a tulip protocol. Part of the
// Redis client example (examples/redis_client.cpp).
//
// command({"SET", "key", "value"}) returns a tulip::Future of the reply at
// once. Redis answers in order, so the protocol keeps one queue of pending
// Futures and completes the front one per parsed reply. Commands issued in the
// same loop iteration are sent with one write: 10,000 commands in a loop cost
// one system call, not 10,000 (pipelining).
//
// Every failure reaches the Futures as an exception, never a crash:
//  * an error reply ("-ERR ...")           -> RedisError (that command only);
//  * bytes that are not RESP               -> resp::ProtocolError (all pending; connection
//  aborted);
//  * the server going away before replying -> tulip::ConnectionError (all pending);
//  * no reply within the timeout           -> tulip::TimeoutError (all pending; connection
//  aborted).
//
// Thread-safety: the loop's thread only, like every protocol.
#pragma once

#include <deque>
#include <exception>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "redis/resp.hpp"
#include "tulip/tulip.hpp"

/// The server answered a command with an error reply.
class RedisError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RedisProtocol : public tulip::Protocol {
 public:
  /// `timeout_seconds`: how long the server may stay silent while replies are due.
  explicit RedisProtocol(tulip::EventLoop& loop, double timeout_seconds = 5.0)
      : loop_(loop), timeout_seconds_(timeout_seconds) {}
  // Callbacks still queued on the loop must not reach a destroyed protocol.
  ~RedisProtocol() override {
    flush_.cancel();
    cancel_timer();
  }

  /// Sends a command (queued until the end of this iteration, see above) and
  /// returns the Future of its reply.
  tulip::Future<resp::Value> command(std::initializer_list<std::string_view> arguments) {
    return command(std::span<const std::string_view>(arguments.begin(), arguments.size()));
  }
  tulip::Future<resp::Value> command(std::span<const std::string_view> arguments) {
    auto reply = loop_.create_future<resp::Value>();
    if (failure_) {  // the connection is already gone: fail at once, with the reason
      reply.set_exception(failure_);
      return reply;
    }
    outgoing_ += resp::encode_command(arguments);
    pending_.push_back(reply);
    schedule_flush();
    if (!timer_) arm_timer();
    return reply;
  }

  /// Replies still expected.
  std::size_t pending() const { return pending_.size(); }

  // ---- tulip::Protocol callbacks ----

  void connection_made(tulip::Transport& transport) override {
    transport_ = &transport;
    schedule_flush();  // commands may have been issued before the connection was made
  }

  void data_received(std::string_view data) override {
    parser_.feed(data);
    try {
      while (std::optional<resp::Value> value = parser_.next()) deliver(std::move(*value));
    } catch (const resp::ProtocolError&) {
      // After a malformed reply nothing later can be trusted to line up with
      // its command: fail everything and drop the connection.
      fail(std::current_exception());
      transport_->abort();
      return;
    }
    if (pending_.empty()) {
      cancel_timer();
    } else {
      arm_timer();  // progress: the server gets a fresh timeout for the rest
    }
  }

  void connection_lost(std::error_code error) override {
    transport_ = nullptr;
    cancel_timer();
    if (pending_.empty() && !failure_) {
      failure_ = std::make_exception_ptr(
          tulip::ConnectionError(error ? error : std::make_error_code(std::errc::not_connected),
                                 "redis: the connection is closed"));
      return;
    }
    std::string why = parser_.partial() ? " in the middle of a reply" : " before replying";
    fail(std::make_exception_ptr(tulip::ConnectionError(
        error ? error : std::make_error_code(std::errc::connection_reset),
        "redis: the server closed the connection" + why + " (" + std::to_string(pending_.size()) +
            " replies outstanding" + (error ? ": " + error.message() : "") + ")")));
  }

 private:
  void deliver(resp::Value value) {
    if (pending_.empty()) throw resp::ProtocolError("RESP: a reply nobody asked for");
    tulip::Future<resp::Value> reply = std::move(pending_.front());
    pending_.pop_front();
    if (reply.done()) return;  // the caller cancelled it
    if (value.type == resp::Value::Type::kError) {
      reply.set_exception(std::make_exception_ptr(RedisError("redis: " + value.text)));
    } else {
      reply.set_result(std::move(value));
    }
  }

  // Fails every pending reply with `error`, and every later command too.
  void fail(std::exception_ptr error) {
    if (!failure_) failure_ = error;
    cancel_timer();
    std::deque<tulip::Future<resp::Value>> failed;
    failed.swap(pending_);
    for (auto& reply : failed) {
      if (!reply.done()) reply.set_exception(error);
    }
  }

  // One write per iteration however many commands were issued in it.
  void schedule_flush() {
    if (flush_scheduled_ || outgoing_.empty()) return;
    flush_scheduled_ = true;
    flush_ = loop_.call_soon([this] {
      flush_scheduled_ = false;
      if (transport_ != nullptr && !outgoing_.empty()) transport_->write(std::move(outgoing_));
      outgoing_.clear();
    });
  }

  void arm_timer() {
    cancel_timer();
    timer_ = loop_.call_later(timeout_seconds_, [this] {
      timer_ = {};
      fail(std::make_exception_ptr(
          tulip::TimeoutError("redis: no reply within " + std::to_string(timeout_seconds_) +
                              " s (" + std::to_string(pending_.size()) + " replies outstanding)")));
      if (transport_ != nullptr) transport_->abort();
    });
  }

  void cancel_timer() {
    if (timer_) timer_.cancel();
    timer_ = {};
  }

  tulip::EventLoop& loop_;
  double timeout_seconds_;
  tulip::Transport* transport_ = nullptr;  // valid from connection_made to connection_lost
  resp::Parser parser_;
  std::deque<tulip::Future<resp::Value>> pending_;
  std::string outgoing_;
  bool flush_scheduled_ = false;
  tulip::Handle flush_;
  tulip::TimerHandle timer_;
  std::exception_ptr failure_;  // set once the connection failed: later commands fail with it
};
