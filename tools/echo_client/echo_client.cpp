// tulip-echo-client: the seed's asyncio echo client, as a command-line program.
//
// Connects (TCP, or a Unix socket with --unix), logs the peer and the
// socket's buffer sizes, writes the message, logs every chunk that comes back,
// and exits 0 when the server closes the connection. With --udp it sends the
// message as one datagram and waits for the echo instead. See docs/tools.md
// for every option and exit code.
#include <sys/socket.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <utility>

#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;
using namespace tulip::tools;

constexpr const char* kProgram = "tulip-echo-client";
constexpr const char* kUsage =
    "usage: tulip-echo-client [--host H] [--port P | --unix PATH] [--udp] [--message TEXT]\n"
    "                         [--size N] [--eof] [--verify] [--timeout SEC]\n"
    "                         [--happy-eyeballs-delay SEC] [--quiet]\n";

// The largest UDP payload over IPv4 (65535 less the IP and UDP headers).
constexpr std::uint64_t kMaxDatagram = 65507;
// How long --udp waits for its echo when --timeout is not given.
constexpr double kDefaultUdpTimeout = 5.0;

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  std::string message = "Hello World!";
  std::optional<std::uint64_t> size;  // send a generated payload of this many bytes instead
  bool eof = false;
  bool verify = false;
  double timeout = 0;
  bool quiet = false;
  std::optional<std::string> unix_path;  // --unix: a Unix socket instead of TCP
  bool udp = false;
  bool host_given = false;
  bool port_given = false;
  std::optional<double> happy_eyeballs_delay;
};

[[noreturn]] void usage_error(const std::string& message) {
  error_line(kProgram, "error: " + message);
  std::fputs(kUsage, stderr);
  std::exit(kExitUsage);
}

Options parse_arguments(int argc, char** argv) {
  Options options;
  ArgumentCursor cursor(argc, argv);
  while (!cursor.done()) {
    std::string name = cursor.next();
    // A flag given as "--flag=value" is a mistake, not something to ignore.
    auto flag = [&]() {
      if (cursor.has_inline_value()) usage_error(name + " takes no value");
    };
    auto required = [&]() {
      auto value = cursor.value();
      if (!value) usage_error("option " + name + " needs a value");
      return *value;
    };
    if (name == "--help" || name == "-h") {
      flag();
      std::fputs(kUsage, stdout);
      std::exit(kExitOk);
    } else if (name == "--host") {
      options.host = required();
      options.host_given = true;
      if (options.host.empty()) usage_error("--host must not be empty");
    } else if (name == "--port") {
      std::string value = required();
      auto port = parse_port(value, 1);
      if (!port) usage_error("--port must be a number from 1 to 65535, not '" + value + "'");
      options.port = *port;
      options.port_given = true;
    } else if (name == "--unix") {
      options.unix_path = required();
      if (options.unix_path->empty()) usage_error("--unix must not be empty");
    } else if (name == "--udp") {
      flag();
      options.udp = true;
    } else if (name == "--message") {
      options.message = required();
      if (options.message.empty()) usage_error("--message must not be empty");
    } else if (name == "--size") {
      std::string value = required();
      auto size = parse_size(value);
      if (!size || *size == 0) {
        usage_error("--size must be a positive byte count (e.g. 4096, 64K, 64MiB), not '" + value +
                    "'");
      }
      options.size = size;
    } else if (name == "--eof") {
      flag();
      options.eof = true;
    } else if (name == "--verify") {
      flag();
      options.verify = true;
    } else if (name == "--timeout") {
      std::string value = required();
      auto seconds = parse_seconds(value);
      if (!seconds)
        usage_error("--timeout must be a positive number of seconds, not '" + value + "'");
      options.timeout = *seconds;
    } else if (name == "--happy-eyeballs-delay") {
      std::string value = required();
      auto seconds = parse_seconds(value);
      if (!seconds) {
        usage_error("--happy-eyeballs-delay must be a positive number of seconds, not '" + value +
                    "'");
      }
      options.happy_eyeballs_delay = *seconds;
    } else if (name == "--quiet" || name == "-q") {
      flag();
      options.quiet = true;
    } else {
      usage_error("unknown option '" + name + "'");
    }
  }
  if (options.unix_path) {
    if (options.udp) usage_error("--unix and --udp cannot be combined");
    if (options.port_given) usage_error("--port cannot be combined with --unix");
    if (options.host_given) usage_error("--host cannot be combined with --unix");
  }
  if (options.happy_eyeballs_delay && (options.unix_path || options.udp)) {
    usage_error("--happy-eyeballs-delay applies to TCP connections only");
  }
  if (options.udp) {
    if (options.eof) usage_error("--eof has no meaning with --udp (a datagram has no end)");
    if (options.size && *options.size > kMaxDatagram) {
      usage_error("--size must be at most " + std::to_string(kMaxDatagram) +
                  " bytes with --udp (one datagram)");
    }
    if (options.timeout == 0) options.timeout = kDefaultUdpTimeout;
  }
  return options;
}

// The payload: the message, or --size bytes of the test pattern, produced in
// chunks as flow control allows so that memory stays bounded for any size.
class Payload {
 public:
  explicit Payload(const Options& options)
      : message_(options.size ? std::string() : options.message),
        total_(options.size ? *options.size : options.message.size()),
        generated_(options.size.has_value()) {}

  std::uint64_t total() const { return total_; }
  bool finished() const { return produced_ == total_; }

  std::string next_chunk() {
    if (!generated_) {
      produced_ = total_;
      return message_;
    }
    std::size_t count =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, total_ - produced_));
    std::string chunk(count, '\0');
    fill_pattern(chunk.data(), produced_, count);
    produced_ += count;
    return chunk;
  }

  /// True if `data`, arriving at echo offset `offset`, is what was sent there.
  bool matches(std::uint64_t offset, std::string_view data, std::uint64_t* bad_offset) const {
    for (std::size_t i = 0; i < data.size(); ++i) {
      std::uint64_t at = offset + i;
      char expected = at >= total_ ? '\0' : generated_ ? pattern_byte(at) : message_[at];
      if (at >= total_ || data[i] != expected) {
        *bad_offset = at;
        return false;
      }
    }
    return true;
  }

 private:
  static constexpr std::size_t kChunk = 256 * 1024;
  std::string message_;
  std::uint64_t total_;
  std::uint64_t produced_ = 0;
  bool generated_;
};

struct Outcome {
  int exit_code = kExitOk;
  std::string error;  // set with a non-zero exit code
};

class EchoClientProtocol final : public Protocol {
 public:
  EchoClientProtocol(const Options& options, Future<bool> on_con_lost, Outcome& outcome)
      : options_(options),
        payload_(options),
        on_con_lost_(std::move(on_con_lost)),
        outcome_(outcome) {}

  void connection_made(Transport& transport) override {
    transport_ = &transport;
    auto peer = transport.get_extra_info<SocketAddress>("peername");
    peer_ = peer ? peer->to_string() : std::string("None");
    int fd = transport.get_extra_info<int>("socket").value_or(-1);
    log("connected to " + peer_);
    int receive_buffer = 0;
    int send_buffer = 0;
    socklen_t length = sizeof(int);
    ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, &length);
    length = sizeof(int);
    ::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, &length);
    log("recv_buf_size: " + std::to_string(receive_buffer));
    log("send_buf_size: " + std::to_string(send_buffer));
    send_more();
  }

  void pause_writing() override { paused_ = true; }
  void resume_writing() override {
    paused_ = false;
    send_more();
  }

  void data_received(std::string_view data) override {
    log("recv: " + python_bytes_repr(data));
    if (options_.verify && outcome_.exit_code == kExitOk) {
      std::uint64_t bad = 0;
      if (!payload_.matches(received_, data, &bad)) {
        fail(kExitVerifyMismatch,
             "verify: the echo differs from what was sent at byte " + std::to_string(bad));
        transport_->abort();
      }
    }
    received_ += data.size();
  }

  void connection_lost(std::error_code error) override {
    if (error) {
      fail(kExitConnectionError, "connection to " + peer_ + " lost: " + error.message());
    } else if (outcome_.exit_code == kExitOk) {
      // Only a close we did not cause ourselves (by aborting on a verify
      // mismatch or a timeout) is the server's.
      log("The server closed the connection");
      if (options_.verify && outcome_.exit_code == kExitOk && received_ != payload_.total()) {
        fail(kExitVerifyMismatch, "verify: received " + std::to_string(received_) + " of " +
                                      std::to_string(payload_.total()) + " bytes");
      }
    }
    transport_ = nullptr;
    on_con_lost_.set_result(true);
  }

  std::uint64_t received() const { return received_; }

 private:
  void send_more() {
    while (!paused_ && !payload_.finished() && transport_ != nullptr && !transport_->is_closing()) {
      std::string chunk = payload_.next_chunk();
      std::string shown = options_.size ? std::string() : python_bytes_repr(chunk);
      transport_->write(std::move(chunk));
      if (!options_.size) log("sent: " + shown);
    }
    if (payload_.finished() && !eof_done_ && transport_ != nullptr) {
      if (options_.size) {
        std::string head(std::min<std::uint64_t>(payload_.total(), 64), '\0');
        fill_pattern(head.data(), 0, head.size());
        log("sent: " + python_bytes_repr(head, 64) +
            (payload_.total() > 64 ? "... (" + std::to_string(payload_.total()) + " bytes)" : ""));
      }
      if (options_.eof) transport_->write_eof();
      eof_done_ = true;
    }
  }

  void log(const std::string& message) const {
    if (!options_.quiet) log_line(message);
  }

  void fail(int code, std::string message) {
    if (outcome_.exit_code != kExitOk) return;
    outcome_.exit_code = code;
    outcome_.error = std::move(message);
  }

  const Options& options_;
  Payload payload_;
  Future<bool> on_con_lost_;
  Outcome& outcome_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
  std::string peer_;
  std::uint64_t received_ = 0;
  bool paused_ = false;
  bool eof_done_ = false;
};

int run(const Options& options) {
  // The protocol refers to `outcome` (and `options`) until its connection_lost,
  // which the loop's destructor still calls for a connection left open: both
  // must outlive the loop, so `outcome` is declared before it.
  Outcome outcome;
  EventLoop loop;
  // Bad peers and exceptions must never print a stack trace: report one line.
  loop.set_exception_handler([&outcome](EventLoop&, const ExceptionContext& context) {
    error_line(kProgram, describe(context));
    if (outcome.exit_code == kExitOk) outcome.exit_code = kExitConnectionError;
  });
  bool timed_out = false;
  if (options.timeout > 0) {
    loop.call_later(options.timeout, [&] {
      timed_out = true;
      loop.stop();
    });
  }
  auto report_timeout = [&]() {
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", options.timeout);
    std::string target = options.unix_path
                             ? "'" + *options.unix_path + "'"
                             : "'" + options.host + "' port " + std::to_string(options.port);
    error_line(kProgram, std::string("timed out after ") + seconds + " s talking to " + target);
    return kExitTimeout;
  };

  Future<bool> on_con_lost = loop.create_future<bool>();
  std::shared_ptr<Transport> transport;
  try {
    ConnectOptions connect_options;
    connect_options.happy_eyeballs_delay = options.happy_eyeballs_delay;
    auto factory = [&] {
      return std::make_shared<EchoClientProtocol>(options, on_con_lost, outcome);
    };
    auto connection =
        options.unix_path
            ? loop.run_until_complete(loop.create_unix_connection(factory, *options.unix_path))
            : loop.run_until_complete(
                  loop.create_connection(factory, options.host, options.port, connect_options));
    transport = connection.transport;
  } catch (const RuntimeError&) {
    if (timed_out) return report_timeout();
    throw;
  } catch (const std::exception& e) {
    error_line(kProgram, e.what());
    return kExitConnectionError;
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
    return report_timeout();
  }
  transport->close();
  if (outcome.exit_code != kExitOk && !outcome.error.empty()) error_line(kProgram, outcome.error);
  return outcome.exit_code;
}

// --udp: one datagram out, one echo back.
class UdpClientProtocol final : public DatagramProtocol {
 public:
  UdpClientProtocol(const Options& options, Future<void> done, Outcome& outcome)
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
  Outcome& outcome_;
  std::string message_;
  std::string peer_;
  DatagramTransport* transport_ = nullptr;  // valid from connection_made until connection_lost
};

int run_udp(const Options& options) {
  Outcome outcome;  // outlives the loop: the protocol refers to it until connection_lost
  EventLoop loop;
  loop.set_exception_handler([&outcome](EventLoop&, const ExceptionContext& context) {
    error_line(kProgram, describe(context));
    if (outcome.exit_code == kExitOk) outcome.exit_code = kExitConnectionError;
  });
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
  Options options = parse_arguments(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return options.udp ? run_udp(options) : run(options);
  } catch (const std::exception& e) {
    error_line(kProgram, std::string("error: ") + e.what());
    return kExitConnectionError;
  }
}
