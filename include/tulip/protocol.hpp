// Protocols: the application's side of a connection (asyncio.BaseProtocol,
// asyncio.Protocol, asyncio.BufferedProtocol).
//
// You subclass Protocol (or BufferedProtocol) and override the callbacks you
// need; the transport calls them on the loop's thread, never from inside a
// transport method you called (except pause_writing, see below).
//
// Call order, guaranteed for every connection:
//
//     connection_made  ->  data_received* (or get_buffer/buffer_updated pairs)
//                      ->  eof_received?  ->  connection_lost
//
// connection_made is called exactly once, first; connection_lost exactly once,
// last; nothing follows connection_lost. eof_received is called at most once,
// when the peer has finished sending.
//
// Ownership: the transport owns its protocol (a shared_ptr from the factory you
// gave create_connection / create_server) until connection_lost has returned;
// then it lets it go. The Transport& handed to connection_made is valid until
// connection_lost returns; a protocol may keep a plain pointer to it for that
// long, and must not use it afterwards. To keep a transport longer, take
// transport.shared_from_this() (and break the cycle in connection_lost).
//
// Errors: an exception thrown by connection_made, data_received, eof_received,
// get_buffer or buffer_updated is caught by the transport, reported to the
// loop's exception handler, and closes that connection only: connection_lost
// follows with Error::kCallbackRaised. An exception from pause_writing,
// resume_writing or connection_lost is reported and the transport goes on.
//
// Thread-safety: all callbacks run on the loop's thread.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>

#include "tulip/export.hpp"

namespace tulip {

class Transport;

/// What every protocol has: loss notification and write flow control.
class TULIP_API BaseProtocol {
 public:
  virtual ~BaseProtocol() = default;

  /// The connection is gone. `error` is empty for a clean close (close(),
  /// abort(), or the peer's EOF), else the cause (ECONNRESET, a callback that
  /// threw, ...). Called exactly once; the transport is still valid during the
  /// call and is released right after it.
  virtual void connection_lost(std::error_code error) { (void)error; }

  /// The transport's write buffer went over its high-water mark: stop writing
  /// until resume_writing(). Called synchronously from inside write() /
  /// writelines() / set_write_buffer_limits(), as in asyncio.
  virtual void pause_writing() {}

  /// The write buffer drained to the low-water mark: writing may go on.
  virtual void resume_writing() {}
};

/// What stream protocols share; not instantiated directly (use Protocol or
/// BufferedProtocol). tulip's name for the part asyncio's two classes have in common.
class TULIP_API StreamProtocol : public BaseProtocol {
 private:
  // Derive from tulip::Protocol or tulip::BufferedProtocol, not from
  // StreamProtocol: a class with neither data_received nor get_buffer would
  // silently drop every byte, so only those two may construct this base.
  StreamProtocol() = default;
  friend class Protocol;
  friend class BufferedProtocol;

 public:
  /// The connection is ready. `transport` is valid until connection_lost returns.
  /// Reading starts after this returns, so pausing reading here reads nothing.
  virtual void connection_made(Transport& transport) { (void)transport; }

  /// The peer finished sending (it called shutdown(SHUT_WR) or close()). Return
  /// true to keep the transport open for writing (then close it yourself when
  /// done); return false (the default) to let the transport close itself.
  virtual bool eof_received() { return false; }
};

/// A stream protocol that receives data as borrowed chunks.
class TULIP_API Protocol : public StreamProtocol {
 public:
  /// Some bytes arrived. `data` is borrowed: it points into a loop-owned buffer
  /// that is reused after this returns, so copy what you keep. Never empty.
  virtual void data_received(std::string_view data) { (void)data; }
};

/// A stream protocol that lets the kernel read straight into its own memory.
class TULIP_API BufferedProtocol : public StreamProtocol {
 public:
  /// Returns the memory the next read goes into; it must stay valid until
  /// buffer_updated() or connection_lost(). `size_hint` is how much the
  /// transport would like (it reads at most 256 KiB at a time). An empty buffer
  /// is an error that closes the connection.
  virtual std::span<std::byte> get_buffer(std::size_t size_hint) = 0;

  /// `bytes` bytes were written at the start of the last buffer returned by get_buffer.
  virtual void buffer_updated(std::size_t bytes) = 0;
};

}  // namespace tulip
