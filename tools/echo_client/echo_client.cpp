// tulip-echo-client: the seed's asyncio echo client, as a command-line program.
//
// Connects (TCP, or a Unix socket with --unix), logs the peer and the
// socket's buffer sizes, writes the message, logs every chunk that comes back,
// and exits 0 when the server closes the connection. With --udp it sends the
// message as one datagram and waits for the echo instead. This file holds the
// Protocol implementation (the seed's shape); --streams runs the same client
// written on the streams API (streams_client.cpp). See docs/tools.md for every
// option and exit code.
#include <csignal>
#include <cstdio>
#include <string>
#include <utility>

#include "client_options.hpp"
#include "client_tls.hpp"
#include "echo_session.hpp"
#include "streams_client.hpp"
#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;
using namespace tulip::tools;

using Options = ClientOptions;
constexpr const char* kProgram = kClientProgram;

// The seed's protocol: the session's transcript, driven by the transport's callbacks.
class EchoClientProtocol final : public Protocol {
 public:
  EchoClientProtocol(EchoSession& session, Future<bool> on_con_lost)
      : session_(session), on_con_lost_(std::move(on_con_lost)) {}

  void connection_made(Transport& transport) override {
    transport_ = &transport;
    session_.connected(transport.get_extra_info<SocketAddress>("peername"),
                       transport.get_extra_info<int>("socket").value_or(-1),
                       tls_summary(transport));
    send_more();
  }

  void pause_writing() override { paused_ = true; }
  void resume_writing() override {
    paused_ = false;
    send_more();
  }

  void data_received(std::string_view data) override {
    if (!session_.received(data)) transport_->abort();
  }

  void connection_lost(std::error_code error) override {
    session_.lost(error);
    transport_ = nullptr;
    on_con_lost_.set_result(true);
  }

 private:
  void send_more() {
    while (!paused_ && session_.has_more() && transport_ != nullptr && !transport_->is_closing()) {
      transport_->write(session_.next_chunk());
      session_.chunk_written();
    }
    if (transport_ != nullptr && session_.all_written()) transport_->write_eof();
  }

  EchoSession& session_;
  Future<bool> on_con_lost_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
  bool paused_ = false;
};

int run(const Options& options) {
  // The protocol refers to the session (and the session to `outcome` and
  // `options`) until its connection_lost, which the loop's destructor still
  // calls for a connection left open: they must outlive the loop, so they are
  // declared before it.
  ClientOutcome outcome;
  EchoSession session(options, outcome);
  EventLoop loop;
  report_loop_errors(loop, outcome);
  bool timed_out = false;
  if (options.timeout > 0) {
    loop.call_later(options.timeout, [&] {
      timed_out = true;
      loop.stop();
    });
  }

  Future<bool> on_con_lost = loop.create_future<bool>();
  std::shared_ptr<Transport> transport;
  try {
    ConnectOptions connect_options;
    connect_options.happy_eyeballs_delay = options.happy_eyeballs_delay;
    apply_tls(options, connect_options);
    UnixConnectOptions unix_options;
    apply_tls(options, unix_options);
    auto factory = [&] { return std::make_shared<EchoClientProtocol>(session, on_con_lost); };
    auto connection = options.unix_path
                          ? loop.run_until_complete(loop.create_unix_connection(
                                factory, *options.unix_path, unix_options))
                          : loop.run_until_complete(loop.create_connection(
                                factory, options.host, options.port, connect_options));
    transport = connection.transport;
  } catch (const RuntimeError&) {
    if (timed_out) return report_timeout(options);
    throw;
  } catch (const std::exception& e) {
    return report_connect_failure(options, e);
  }

  // Wait until the protocol signals that the connection is lost, then close
  // the transport (a no-op by then), as the seed does.
  try {
    loop.run_until_complete(on_con_lost);
  } catch (const RuntimeError&) {
    if (!timed_out) throw;
    // Drop the connection and let its connection_lost run on a loop iteration
    // (abort() queues it), so that the protocol is done before we return.
    outcome.exit_code = kExitTimeout;
    transport->abort();
    loop.run_until_complete(on_con_lost);
    return report_timeout(options);
  }
  transport->close();
  return session.finish();
}

// --udp: one datagram out, one echo back.
class UdpClientProtocol final : public DatagramProtocol {
 public:
  UdpClientProtocol(const Options& options, Future<void> done, ClientOutcome& outcome)
      : options_(options), done_(std::move(done)), outcome_(outcome) {
    if (options.size) {
      message_.resize(*options.size);
      fill_pattern(message_.data(), 0, message_.size());
    } else {
      message_ = options.message;
    }
  }

  void connection_made(DatagramTransport& transport) override {
    transport_ = &transport;
    auto peer = transport.get_extra_info<SocketAddress>("peername");
    peer_ = peer ? peer->to_string() : std::string("None");
    log("connected to " + peer_);
    transport.sendto(message_);
    log("sent: " + python_bytes_repr(message_));
  }

  void datagram_received(std::string_view data, const SocketAddress&) override {
    log("recv: " + python_bytes_repr(data));
    if (options_.verify && data != message_) {
      std::size_t at = 0;
      while (at < data.size() && at < message_.size() && data[at] == message_[at]) ++at;
      finish(kExitVerifyMismatch, "verify: the echo differs from what was sent at byte " +
                                      std::to_string(at) + " (" + std::to_string(data.size()) +
                                      " bytes received, " + std::to_string(message_.size()) +
                                      " sent)");
      return;
    }
    finish(kExitOk, "");
  }

  void error_received(std::error_code error) override {
    finish(kExitConnectionError, "no echo from " + peer_ + ": " + error.message());
  }

  void connection_lost(std::error_code) override {
    transport_ = nullptr;
    if (!done_.done()) done_.set_result();
  }

 private:
  void finish(int code, std::string message) {
    if (transport_ == nullptr || transport_->is_closing()) return;
    outcome_.exit_code = code;
    outcome_.error = std::move(message);
    transport_->close();
  }

  void log(const std::string& message) const {
    if (!options_.quiet) log_line(message);
  }

  const Options& options_;
  Future<void> done_;
  ClientOutcome& outcome_;
  std::string message_;
  std::string peer_;
  DatagramTransport* transport_ = nullptr;  // valid from connection_made until connection_lost
};

int run_udp(const Options& options) {
  ClientOutcome outcome;  // outlives the loop: the protocol refers to it until connection_lost
  EventLoop loop;
  report_loop_errors(loop, outcome);
  Future<void> done = loop.create_future();
  DatagramEndpoint<UdpClientProtocol> endpoint;
  try {
    endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
        [&] { return std::make_shared<UdpClientProtocol>(options, done, outcome); }, std::nullopt,
        HostPort{options.host, options.port}));
  } catch (const std::exception& e) {
    error_line(kProgram, e.what());
    return kExitConnectionError;
  }
  // A datagram may be lost, or nobody may answer: the timeout ends the wait.
  bool timed_out = false;
  TimerHandle timer = loop.call_later(options.timeout, [&] {
    timed_out = true;
    endpoint.transport->abort();
  });
  loop.run_until_complete(done);
  timer.cancel();
  if (timed_out) {
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", options.timeout);
    error_line(kProgram, std::string("timed out after ") + seconds +
                             " s waiting for the echo from '" + options.host + "' port " +
                             std::to_string(options.port));
    return kExitTimeout;
  }
  if (outcome.exit_code != kExitOk && !outcome.error.empty()) error_line(kProgram, outcome.error);
  return outcome.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_client_arguments(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    if (options.udp) return run_udp(options);
    return options.streams ? run_streams_client(options) : run(options);
  } catch (const std::exception& e) {
    error_line(kProgram, std::string("error: ") + e.what());
    return kExitConnectionError;
  }
}
