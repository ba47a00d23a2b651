// Transports: the library's side of a connection (asyncio.BaseTransport,
// asyncio.ReadTransport, asyncio.WriteTransport, asyncio.Transport).
//
// A transport owns a socket (or a pipe) and moves bytes between it and its
// protocol. You never create one yourself: create_connection, create_server,
// connect_read_pipe and connect_write_pipe do, and hand it to your protocol's
// connection_made.
//
// The hierarchy is asyncio's: a ReadTransport can pause and resume reading, a
// WriteTransport can write, a Transport is both (a socket). The pipe
// transports of connect_read_pipe / connect_write_pipe are handed out as a
// ReadTransport / WriteTransport; their protocols still receive a Transport&
// in connection_made, on which the half that does not apply refuses (see
// pipes in event_loop.hpp).
//
// Lifetime. The loop keeps every transport alive from its creation until its
// protocol's connection_lost has returned; the transport keeps its protocol
// alive for the same time. A std::shared_ptr<Transport> (from create_connection,
// or shared_from_this()) keeps the object alive longer, and every method stays
// safe to call on it after the connection is gone: close() and abort() do
// nothing, write() drops the bytes with a warning, is_closing() is true.
// close() and abort() never call connection_lost themselves: it always comes
// later, from the loop, on a fresh stack, so calling them from inside any
// protocol callback is safe.
//
// Written bytes. write() copies whatever the kernel does not take at once, so
// the caller's memory is free as soon as write() returns (asyncio 3.12 keeps a
// reference to the caller's buffer instead; in C++ that would be a dangling
// pointer). The overload taking std::string&& moves the string into the buffer
// without copying when it has to be buffered. Every byte accepted by write() is
// either sent or the protocol learns that it was not: connection_lost with an
// error, or a warning when bytes are written after close.
//
// Thread-safety: loop thread only (like everything but call_soon_threadsafe).
#pragma once

#include <any>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "tulip/export.hpp"

namespace tulip {

class EventLoop;
class StreamProtocol;

/// What every transport has: closing and extra information.
class TULIP_API BaseTransport : public std::enable_shared_from_this<BaseTransport> {
 public:
  virtual ~BaseTransport() = default;

  /// Closes the transport: stops reading now, sends what is buffered, then
  /// closes the socket; connection_lost (with no error) follows on a later
  /// iteration. Idempotent.
  virtual void close() = 0;

  /// True once close() or abort() was called or the connection was lost.
  virtual bool is_closing() const noexcept = 0;

  /// asyncio's get_extra_info(name): "peername" and "sockname" (SocketAddress,
  /// still available after close), "socket" (int, the descriptor, or -1 once
  /// closed), and for a Unix stream socket "peercred" (PeerCredentials, while
  /// open). An empty std::any for names it does not know.
  virtual std::any get_extra_info(std::string_view name) const = 0;

  /// Typed convenience: get_extra_info<SocketAddress>("peername"); nullopt if
  /// the name is unknown or holds another type.
  template <class T>
  std::optional<T> get_extra_info(std::string_view name) const {
    std::any value = get_extra_info(name);
    if (const T* typed = std::any_cast<T>(&value)) return *typed;
    return std::nullopt;
  }

  /// Replaces the protocol; the new one receives the callbacks from now on
  /// (its connection_made is not called, as in asyncio). Safe from inside any
  /// callback of the old protocol: the transport keeps the old one alive until
  /// the next iteration, so the callback that made the switch can finish.
  /// Throws std::invalid_argument for null, or for a protocol that is neither
  /// a Protocol nor a BufferedProtocol.
  virtual void set_protocol(std::shared_ptr<StreamProtocol> protocol) = 0;
  /// The current protocol; null once connection_lost has returned.
  virtual StreamProtocol* get_protocol() const noexcept = 0;

  /// The loop the transport runs on.
  virtual EventLoop& get_loop() const noexcept = 0;
};

/// The reading half of a stream (asyncio.ReadTransport).
class TULIP_API ReadTransport : public virtual BaseTransport {
 public:
  /// Stops calling data_received until resume_reading(). Idempotent; no effect
  /// once closing.
  virtual void pause_reading() = 0;
  /// Calls data_received again after pause_reading(). Idempotent.
  virtual void resume_reading() = 0;
  /// True unless paused or closing.
  virtual bool is_reading() const noexcept = 0;
};

/// The writing half of a stream (asyncio.WriteTransport).
class TULIP_API WriteTransport : public virtual BaseTransport {
 public:
  /// Sends `data`: tries the socket at once and buffers what the kernel did not
  /// take. Empty data is a no-op. After close()/abort()/loss the bytes are
  /// dropped and a warning is logged. Throws RuntimeError after write_eof().
  /// May call the protocol's pause_writing() before returning.
  virtual void write(std::string_view data) = 0;
  /// Same, but moves `data` into the write buffer instead of copying it.
  virtual void write(std::string&& data) = 0;
  /// write() of a NUL-terminated string.
  void write(const char* data) { write(std::string_view(data)); }
  /// write() of raw bytes.
  void write(std::span<const std::byte> data) {
    write(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  }

  /// Sends every buffer, in order, with one sendmsg() system call when nothing
  /// is buffered; flow control applies exactly as for write().
  virtual void writelines(std::span<const std::string_view> buffers) = 0;
  /// writelines() of a braced list: writelines({header, body}).
  void writelines(std::initializer_list<std::string_view> buffers) {
    writelines(std::span<const std::string_view>(buffers.begin(), buffers.size()));
  }

  /// Half-closes: the peer sees EOF once the buffered bytes are sent. Reading
  /// goes on. Idempotent; no effect after close(). (A write pipe has no other
  /// half: there write_eof() is close().)
  virtual void write_eof() = 0;
  /// True for TCP, Unix stream sockets and write pipes.
  virtual bool can_write_eof() const noexcept = 0;

  /// Closes now, dropping buffered bytes; connection_lost (no error) follows on
  /// a later iteration. Idempotent.
  virtual void abort() = 0;

  // ---- Write flow control -----------------------------------------------------

  /// Sets the high- and low-water marks of the write buffer (asyncio defaults:
  /// 64 KiB and 16 KiB; only `high` given: low = high / 4; only `low` given:
  /// high = 4 * low). Throws std::invalid_argument unless high >= low. If the
  /// buffer is already over the new high mark, pause_writing() is called now.
  virtual void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                       std::optional<std::size_t> low = std::nullopt) = 0;
  /// (low, high), as asyncio returns them.
  virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept = 0;
  /// Bytes accepted by write() and not yet handed to the kernel.
  virtual std::size_t get_write_buffer_size() const noexcept = 0;
};

/// A bidirectional byte stream (TCP or a Unix stream socket): both halves.
class TULIP_API Transport : public ReadTransport, public WriteTransport {
 public:
  /// Shorthand for this transport's shared_ptr.
  std::shared_ptr<Transport> shared() {
    // Aliasing: no cast from the virtual base is needed to get here.
    return std::shared_ptr<Transport>(shared_from_this(), this);
  }
};

}  // namespace tulip
