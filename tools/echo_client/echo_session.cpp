#include "echo_session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "tool_support.hpp"
#include "tulip/exception_context.hpp"

namespace tulip::tools {

Payload::Payload(const ClientOptions& options)
    : message_(options.size ? std::string() : options.message),
      total_(options.size ? *options.size : options.message.size()),
      generated_(options.size.has_value()) {}

std::string Payload::next_chunk() {
  if (!generated_) {
    produced_ = total_;
    return message_;
  }
  std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, total_ - produced_));
  std::string chunk(count, '\0');
  fill_pattern(chunk.data(), produced_, count);
  produced_ += count;
  return chunk;
}

bool Payload::matches(std::uint64_t offset, std::string_view data,
                      std::uint64_t* bad_offset) const {
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

EchoSession::EchoSession(const ClientOptions& options, ClientOutcome& outcome)
    : options_(options), outcome_(outcome), payload_(options) {}

void EchoSession::connected(const std::optional<SocketAddress>& peer, int socket,
                            const std::optional<std::string>& tls) {
  peer_ = peer ? peer->to_string() : std::string("None");
  log("connected to " + peer_);
  int receive_buffer = 0;
  int send_buffer = 0;
  socklen_t length = sizeof(int);
  ::getsockopt(socket, SOL_SOCKET, SO_RCVBUF, &receive_buffer, &length);
  length = sizeof(int);
  ::getsockopt(socket, SOL_SOCKET, SO_SNDBUF, &send_buffer, &length);
  log("recv_buf_size: " + std::to_string(receive_buffer));
  log("send_buf_size: " + std::to_string(send_buffer));
  // Beside the socket's details, as the seed logs them: what TLS negotiated.
  if (tls) log("tls: " + *tls);
}

void EchoSession::chunk_written() {
  if (!payload_.generated()) log("sent: " + python_bytes_repr(options_.message));
}

bool EchoSession::all_written() {
  if (all_written_ || !payload_.finished()) return false;
  all_written_ = true;
  if (payload_.generated()) {
    std::string head(std::min<std::uint64_t>(payload_.total(), 64), '\0');
    fill_pattern(head.data(), 0, head.size());
    log("sent: " + python_bytes_repr(head, 64) +
        (payload_.total() > 64 ? "... (" + std::to_string(payload_.total()) + " bytes)" : ""));
  }
  return options_.eof;
}

bool EchoSession::received(std::string_view data) {
  log("recv: " + python_bytes_repr(data));
  bool ok = true;
  if (options_.verify && outcome_.exit_code == kExitOk) {
    std::uint64_t bad = 0;
    if (!payload_.matches(received_, data, &bad)) {
      fail(kExitVerifyMismatch,
           "verify: the echo differs from what was sent at byte " + std::to_string(bad));
      ok = false;
    }
  }
  received_ += data.size();
  return ok;
}

void EchoSession::lost(std::error_code error) {
  if (error) {
    fail(kExitConnectionError, "connection to " + peer_ + " lost: " + error.message());
  } else if (outcome_.exit_code == kExitOk) {
    // Only a close we did not cause ourselves (by aborting on a verify
    // mismatch or a timeout) is the server's.
    log("The server closed the connection");
    if (options_.verify && received_ != payload_.total()) {
      fail(kExitVerifyMismatch, "verify: received " + std::to_string(received_) + " of " +
                                    std::to_string(payload_.total()) + " bytes");
    }
  }
}

void EchoSession::fail(int code, std::string message) {
  if (outcome_.exit_code != kExitOk) return;
  outcome_.exit_code = code;
  outcome_.error = std::move(message);
}

int EchoSession::finish() const {
  if (outcome_.exit_code != kExitOk && !outcome_.error.empty()) {
    error_line(kClientProgram, outcome_.error);
  }
  return outcome_.exit_code;
}

void EchoSession::log(const std::string& message) const {
  if (!options_.quiet) log_line(message);
}

void report_loop_errors(EventLoop& loop, ClientOutcome& outcome) {
  loop.set_exception_handler([&outcome](EventLoop&, const ExceptionContext& context) {
    error_line(kClientProgram, describe(context));
    if (outcome.exit_code == kExitOk) outcome.exit_code = kExitConnectionError;
  });
}

int report_timeout(const ClientOptions& options) {
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g", options.timeout);
  std::string target = options.unix_path
                           ? "'" + *options.unix_path + "'"
                           : "'" + options.host + "' port " + std::to_string(options.port);
  error_line(kClientProgram, std::string("timed out after ") + seconds + " s talking to " + target);
  return kExitTimeout;
}

}  // namespace tulip::tools
