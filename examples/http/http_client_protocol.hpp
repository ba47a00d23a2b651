// HttpClientProtocol: an HTTP/1.1 client connection as a tulip protocol. Part
// of the HTTP client example (examples/http_client.cpp).
//
// get("/path") writes a request at once and returns a tulip::Future of the
// response. Requests share the connection (keep-alive): HTTP/1.1 answers them
// in order, so a queue of pending Futures is completed front first, as the
// response parser (http/http_parser.hpp) hands out complete responses.
//
// Failures reach the Futures as exceptions: a malformed response
// (http::ParseError; the connection is aborted), the server closing before a
// response is complete (tulip::ConnectionError), or no progress within the
// timeout (tulip::TimeoutError; the connection is aborted).
//
// Thread-safety: the loop's thread only, like every protocol.
#pragma once

#include <deque>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>

#include "http/http_parser.hpp"
#include "tulip/tulip.hpp"

class HttpClientProtocol : public tulip::Protocol {
 public:
  HttpClientProtocol(tulip::EventLoop& loop, std::string host, double timeout_seconds = 5.0)
      : loop_(loop), host_(std::move(host)), timeout_seconds_(timeout_seconds) {}
  ~HttpClientProtocol() override { timer_.cancel(); }

  /// Sends "GET target" on this connection and returns the Future of the
  /// response. `extra_headers`: more header lines, each ending in CRLF
  /// ("Accept-Encoding: gzip\r\n"). Call it after the connection is made.
  tulip::Future<http::Response> get(std::string_view target, std::string_view extra_headers = "") {
    auto response = loop_.create_future<http::Response>();
    if (transport_ == nullptr || transport_->is_closing()) {
      response.set_exception(std::make_exception_ptr(tulip::ConnectionError(
          std::make_error_code(std::errc::not_connected), "http: the connection is closed")));
      return response;
    }
    // One write per request: the transport sends it at once if it can.
    transport_->write("GET " + std::string(target) + " HTTP/1.1\r\nHost: " + host_ +
                      "\r\nUser-Agent: tulip-example\r\n" + std::string(extra_headers) + "\r\n");
    pending_.push_back(response);
    arm_timer();
    return response;
  }

  /// Responses still expected.
  std::size_t pending() const { return pending_.size(); }

  void connection_made(tulip::Transport& transport) override { transport_ = &transport; }

  void data_received(std::string_view data) override {
    parser_.feed(data);
    try {
      while (std::optional<http::Response> response = parser_.next()) deliver(std::move(*response));
    } catch (const http::ParseError&) {
      fail(std::current_exception());
      transport_->abort();
      return;
    }
    arm_timer();
  }

  // The server finished sending: a body that runs until the close is complete
  // now; anything else cut short is an error.
  bool eof_received() override {
    try {
      if (std::optional<http::Response> response = parser_.finish_at_eof()) {
        deliver(std::move(*response));
      }
    } catch (const http::ParseError&) {
      fail(std::current_exception());
    }
    return false;  // close our side too
  }

  void connection_lost(std::error_code error) override {
    transport_ = nullptr;
    fail(std::make_exception_ptr(tulip::ConnectionError(
        error ? error : std::make_error_code(std::errc::connection_reset),
        std::string("http: the server closed the connection") +
            (parser_.in_progress() ? " in the middle of a response" : " before responding") +
            (error ? ": " + error.message() : ""))));
  }

 private:
  void deliver(http::Response response) {
    if (pending_.empty()) throw http::ParseError("HTTP: a response nobody asked for");
    tulip::Future<http::Response> front = std::move(pending_.front());
    pending_.pop_front();
    if (!front.done()) front.set_result(std::move(response));
  }

  void fail(std::exception_ptr error) {
    timer_.cancel();
    std::deque<tulip::Future<http::Response>> failed;
    failed.swap(pending_);
    for (auto& response : failed) {
      if (!response.done()) response.set_exception(error);
    }
  }

  // A fresh deadline whenever a request is sent or bytes arrive; none when
  // nothing is expected.
  void arm_timer() {
    timer_.cancel();
    if (pending_.empty()) return;
    timer_ = loop_.call_later(timeout_seconds_, [this] {
      fail(std::make_exception_ptr(tulip::TimeoutError("http: no response within " +
                                                       std::to_string(timeout_seconds_) + " s")));
      if (transport_ != nullptr) transport_->abort();
    });
  }

  tulip::EventLoop& loop_;
  std::string host_;
  double timeout_seconds_;
  tulip::Transport* transport_ = nullptr;  // valid from connection_made to connection_lost
  http::ResponseParser parser_;
  std::deque<tulip::Future<http::Response>> pending_;
  tulip::TimerHandle timer_;
};
