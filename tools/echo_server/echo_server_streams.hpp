// echo_over_streams: one connection of tulip-echo-server --streams, the
// coroutine that start_server runs for each client (asyncio's
// client_connected_cb). The same server as EchoServerProtocol, written the way
// an asyncio streams echo server is:
//
//   while data := await reader.read(n):
//       writer.write(data)
//       await writer.drain()
//   writer.close(); await writer.wait_closed()
//
// Default mode: echo the first chunk, then close. keep_open: echo everything
// until the peer half-closes; drain() waits while the write buffer is over its
// high-water mark, and meanwhile the StreamReader stops reading from the
// socket once it holds twice its limit, so a peer that does not read gets
// backpressure and the server's memory stays bounded. Logs through
// ConnectionLog, the Protocol server's lines.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

#include "connection_log.hpp"
#include "tulip/streams.hpp"
#include "tulip/task.hpp"

namespace tulip::tools {

/// The most one read takes: as much as the Protocol server gets per
/// data_received (the loop's reads).
inline constexpr std::size_t kStreamsReadChunk = 256 * 1024;

/// Echoes one connection (see the file comment). Each chunk is read with
/// read_into into the connection's own buffer, allocated once (a waiting
/// read_into receives straight into it, so it cannot be shared between
/// connections) and left uninitialised: an idle connection's pages stay
/// untouched.
inline Task<void> echo_over_streams(std::shared_ptr<StreamReader> reader,
                                    std::shared_ptr<StreamWriter> writer, bool keep_open,
                                    bool quiet) {
  std::unique_ptr<char[]> storage(new char[kStreamsReadChunk]);
  std::span<char> buffer(storage.get(), kStreamsReadChunk);
  const ConnectionLog log(quiet);
  log.connection_made(*writer->transport());
  try {
    for (;;) {
      std::size_t count = co_await reader->read_into(buffer);
      // The server closed the connection (shutting down): as the Protocol
      // server, which reads nothing more once it closed, echo nothing more
      // (write() would drop it) and log no EOF.
      if (writer->is_closing()) break;
      if (count == 0) {
        log.peer_finished();
        break;
      }
      std::string_view data(buffer.data(), count);
      log.received(data);
      writer->write(data);
      log.sent(data);
      if (!keep_open) {
        log.closing();
        break;
      }
      co_await writer->drain();
    }
  } catch (const ConnectionError&) {
    // The connection is lost: wait_closed() below gives the cause.
  }
  // The transport sends what is buffered, then closes (at once if it is gone).
  writer->close();
  std::error_code error;
  try {
    co_await writer->wait_closed();
  } catch (const ConnectionError& lost) {
    error = lost.code();
  }
  log.connection_lost(*writer->transport(), error);
}

}  // namespace tulip::tools
