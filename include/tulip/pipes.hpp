// Pipes: EventLoop::connect_read_pipe and connect_write_pipe (asyncio's).
//
// connect_read_pipe(factory, fd) wraps the read end of a pipe (or a FIFO, a
// socket, a character device such as a terminal) in a ReadTransport and the
// protocol `factory` makes; connect_write_pipe(factory, fd) wraps a write end
// in a WriteTransport. Both complete their Future once connection_made has
// run, as create_connection does, with ReadPipe<P> / WritePipe<P>: asyncio's
// (transport, protocol).
//
// The transport owns `fd` from the call on, whatever the outcome: it makes it
// non-blocking and closes it when the transport is done (or at once if the
// Future fails). A regular file or a directory fails the Future with
// std::invalid_argument (epoll cannot watch files, and asyncio refuses them
// too); a descriptor that is not open, with OSError.
//
// Behaviour (asyncio's _UnixReadPipeTransport / _UnixWritePipeTransport):
//  * Read end: data_received (or get_buffer/buffer_updated) as for a socket,
//    pause_reading / resume_reading; at EOF, eof_received then
//    connection_lost(no error): a read pipe closes itself whatever
//    eof_received returns. It has no writing half: write() and write_eof()
//    throw RuntimeError.
//  * Write end: write / writelines with the write buffer and flow control of
//    a socket (pause_writing / resume_writing). When the reader goes away
//    (watched on pipes and sockets), the transport closes: connection_lost
//    with EPIPE if bytes were still buffered, else with no error; a write
//    that meets a gone reader ends the connection with EPIPE. SIGPIPE is
//    never raised: the process lives whatever its SIGPIPE disposition.
//    write_eof() is close(): the reader sees EOF once the buffer has drained.
//    can_write_eof() is true.
//  * get_extra_info("pipe") gives the descriptor (asyncio gives the file object).
//
// The protocol is a Protocol or BufferedProtocol, as for sockets, and its
// connection_made receives the pipe's transport as a Transport&; only the
// half that applies works on it (above).
//
// Thread-safety: loop thread only.
#pragma once

#include <exception>
#include <memory>
#include <utility>

#include "tulip/connection.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/protocol.hpp"
#include "tulip/transport.hpp"

namespace tulip {

class EventLoop;

/// The read end of a pipe and its protocol, as asyncio's (transport, protocol).
template <class P = StreamProtocol>
struct ReadPipe {
  std::shared_ptr<ReadTransport> transport;  ///< The pipe's transport.
  std::shared_ptr<P> protocol;               ///< The protocol the factory made for it.
};

/// The write end of a pipe and its protocol, as asyncio's (transport, protocol).
template <class P = StreamProtocol>
struct WritePipe {
  std::shared_ptr<WriteTransport> transport;  ///< The pipe's transport.
  std::shared_ptr<P> protocol;                ///< The protocol the factory made for it.
};

namespace detail {

/// The untyped half of connect_read_pipe / connect_write_pipe (src/pipes.cpp).
TULIP_API void open_pipe(EventLoop& loop, ProtocolFactory factory, int fd, bool write_end,
                         ConnectCompletion completion);

/// The callbacks that complete a pipe's Future with its typed protocol.
template <class Result>
ConnectCompletion complete_pipe(Future<Result> result) {
  using P = typename decltype(Result::protocol)::element_type;
  ConnectCompletion completion;
  completion.done = [result](std::exception_ptr error, std::shared_ptr<Transport> transport,
                             std::shared_ptr<StreamProtocol> protocol) mutable {
    if (result.done()) {
      // The caller cancelled; as asyncio does, do not leave the pipe open.
      if (transport) transport->close();
      return;
    }
    if (error) {
      result.set_exception(error);
    } else {
      result.set_result(Result{std::move(transport), std::static_pointer_cast<P>(protocol)});
    }
  };
  completion.cancelled = [result] { return result.cancelled(); };
  return completion;
}

}  // namespace detail
}  // namespace tulip
