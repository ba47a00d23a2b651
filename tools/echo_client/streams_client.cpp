// tulip-echo-client --streams: the seed's client as asyncio's streams would
// write it.
//
//   reader, writer = await asyncio.open_connection(host, port)
//   sending = asyncio.create_task(send(writer))     # write(); await drain()
//   while data := await reader.read(256 KiB): log(data)
//   writer.close(); await writer.wait_closed()
//
// EchoSession (echo_session.hpp) keeps the transcript, --verify and the exit
// status, as it does for the Protocol client, so both print the same lines.
// Sending is a task of its own: a client that only wrote until drain() let it
// go on would never read, and a --keep-open server stops reading from a peer
// that does not read its echo.
#include "streams_client.hpp"

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client_tls.hpp"
#include "echo_session.hpp"
#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace tulip::tools {
namespace {

// As much as the Protocol client gets per data_received (the loop's reads).
constexpr std::size_t kReadChunk = 256 * 1024;

// Writes the payload as flow control allows, then half-closes with --eof.
// Ends quietly when the connection goes: the reading side reports why.
Task<void> send_payload(std::shared_ptr<StreamWriter> writer, EchoSession& session) {
  try {
    while (session.has_more()) {
      if (writer->is_closing()) co_return;
      writer->write(session.next_chunk());
      session.chunk_written();
      co_await writer->drain();
    }
  } catch (const ConnectionError&) {
    co_return;
  }
  // As the Protocol client: the --size line and the EOF once the last byte
  // went to the transport. The connection is still there: the last drain()
  // would have raised otherwise.
  if (session.all_written()) writer->write_eof();
}

// Connects, then reads and logs until the server closes the connection (or a
// --verify difference drops it); `connection` gets the writer, so that the
// caller can abort the connection when --timeout cancels this coroutine.
Task<void> exchange(EventLoop& loop, const ClientOptions& options, EchoSession& session,
                    std::shared_ptr<StreamWriter>& connection) {
  StreamPair streams;
  if (options.unix_path) {
    UnixConnectOptions unix_options;
    apply_tls(options, unix_options);
    streams = co_await open_unix_connection(loop, *options.unix_path, unix_options);
  } else {
    ConnectOptions connect_options;
    connect_options.happy_eyeballs_delay = options.happy_eyeballs_delay;
    apply_tls(options, connect_options);
    streams = co_await open_connection(loop, options.host, options.port, connect_options);
  }
  std::shared_ptr<StreamReader> reader = std::move(streams.reader);
  std::shared_ptr<StreamWriter> writer = std::move(streams.writer);
  connection = writer;
  session.connected(writer->get_extra_info<SocketAddress>("peername"),
                    writer->get_extra_info<int>("socket").value_or(-1),
                    tls_summary(*writer->transport()));

  Task<void> sending = loop.create_task(send_payload(writer, session), "send");
  // However this coroutine ends (a --timeout cancels it), sending ends too.
  struct StopSending {
    Task<void>& task;
    ~StopSending() {
      if (!task.done()) task.cancel();
    }
  } stop_sending{sending};

  std::vector<char> buffer(kReadChunk);
  std::error_code error;
  try {
    for (;;) {
      std::size_t count = co_await reader->read_into(buffer);
      if (count == 0) {
        // The server finished sending: close, as the Protocol client's
        // eof_received does by returning false.
        writer->close();
        break;
      }
      if (!session.received(std::string_view(buffer.data(), count))) {
        writer->transport()->abort();
        break;
      }
    }
    // The connection ends when what was written is flushed (or at once after
    // abort()); a failure on the way (a reset, a broken pipe) is its cause.
    co_await writer->wait_closed();
  } catch (const ConnectionError& lost) {
    error = lost.code();
  }
  session.lost(error);
  co_await sending;  // it sees the connection gone and ends
}

}  // namespace

int run_streams_client(const ClientOptions& options) {
  // As in the Protocol client, what the coroutines refer to outlives the loop.
  ClientOutcome outcome;
  EchoSession session(options, outcome);
  EventLoop loop;
  // Goes before the loop does: a StreamWriter still open closes its transport
  // when destroyed, which needs the loop.
  std::shared_ptr<StreamWriter> writer;
  report_loop_errors(loop, outcome);
  std::optional<double> limit;
  if (options.timeout > 0) limit = options.timeout;
  try {
    run_until_complete(loop, timeout(limit, exchange(loop, options, session, writer)));
  } catch (const TimeoutError&) {
    outcome.exit_code = kExitTimeout;  // so that the session logs nothing more
    if (writer) {
      // Drop the connection and let its connection_lost run, so that nothing
      // refers to the session once we return.
      writer->transport()->abort();
      try {
        run_until_complete(loop, writer->wait_closed());
      } catch (const ConnectionError&) {
        // Lost with an error before the abort: the timeout still decides.
      }
    }
    return report_timeout(options);
  } catch (const std::exception& e) {
    // open_connection failed: refused, unresolvable, a bad path, a TLS handshake.
    return report_connect_failure(options, e);
  }
  return session.finish();
}

}  // namespace tulip::tools
