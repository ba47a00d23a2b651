// EchoSession: what tulip-echo-client does with one stream connection,
// whichever API drives it.
//
// The Protocol implementation (echo_client.cpp) and the streams one
// (streams_client.cpp) differ only in how bytes move; the transcript, the
// --verify comparison, the payload and the exit status are this class's, so
// the two print the same lines and exit the same way by construction. The
// driver reports what happens (connected, a chunk written, a chunk received,
// the connection lost) and writes what next_chunk() gives.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "client_options.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/socket_address.hpp"

namespace tulip::tools {

/// How the run ends: the exit status and, with a non-zero one, its line.
struct ClientOutcome {
  int exit_code = 0;  // kExitOk
  std::string error;  // set with a non-zero exit code (but for an exception handler's line)
};

/// The payload: the message, or --size bytes of the test pattern, produced in
/// chunks as flow control allows so that memory stays bounded for any size.
class Payload {
 public:
  explicit Payload(const ClientOptions& options);

  std::uint64_t total() const { return total_; }
  bool generated() const { return generated_; }
  bool finished() const { return produced_ == total_; }
  /// The next chunk: the whole message, or up to 256 KiB of the pattern.
  std::string next_chunk();
  /// True if `data`, arriving at echo offset `offset`, is what was sent there;
  /// else false with the offset of the first difference in *bad_offset.
  bool matches(std::uint64_t offset, std::string_view data, std::uint64_t* bad_offset) const;

 private:
  static constexpr std::size_t kChunk = 256 * 1024;
  std::string message_;
  std::uint64_t total_;
  std::uint64_t produced_ = 0;
  bool generated_;
};

/// One echo exchange's transcript, verification and outcome (see the file comment).
class EchoSession {
 public:
  /// Both must outlive the session.
  EchoSession(const ClientOptions& options, ClientOutcome& outcome);

  /// The connection is made: logs the peer and the socket's buffer sizes,
  /// and for a TLS connection what it negotiated (tls_summary()).
  void connected(const std::optional<SocketAddress>& peer, int socket,
                 const std::optional<std::string>& tls = std::nullopt);
  /// True while payload bytes remain to be written.
  bool has_more() const { return !payload_.finished(); }
  /// The next chunk to write.
  std::string next_chunk() { return payload_.next_chunk(); }
  /// The chunk next_chunk() gave was written: logs the message.
  void chunk_written();
  /// The last chunk was written: logs the --size line once. Returns true once,
  /// when the driver should half-close (--eof).
  bool all_written();
  /// A chunk arrived: logs it and, with --verify, compares it. False on a
  /// difference: the driver then drops the connection (abort).
  bool received(std::string_view data);
  /// The connection is gone; `error` is empty for a clean close.
  void lost(std::error_code error);
  /// Records the first failure; later ones do not change the outcome.
  void fail(int code, std::string message);
  /// The peer's address as Python prints it.
  const std::string& peer() const { return peer_; }
  /// Prints the outcome's error line, if any, and returns the exit status.
  int finish() const;

 private:
  void log(const std::string& message) const;

  const ClientOptions& options_;
  ClientOutcome& outcome_;
  Payload payload_;
  std::string peer_ = "None";
  std::uint64_t received_ = 0;
  bool all_written_ = false;
};

/// Makes the loop's exception handler print one line (never a stack trace)
/// and turn a clean outcome into a connection error. `outcome` must outlive
/// the loop.
void report_loop_errors(EventLoop& loop, ClientOutcome& outcome);

/// Prints the --timeout line ("timed out after 0.5 s talking to ...") and
/// returns its exit status.
int report_timeout(const ClientOptions& options);

}  // namespace tulip::tools
