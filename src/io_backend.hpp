// IoBackend: the one place that knows how the kernel is asked for I/O. Not API.
//
// The loop core (ready queue, timers, running, stopping), the connector, the
// server and the resolver are backend-neutral. They ask a backend to:
//  * wait for events (poll) and deliver them (dispatch), and wake a waiting
//    poll from another thread (wakeup);
//  * make the objects whose mechanics differ by model: stream transports (on
//    sockets and on pipes), datagram transports, listeners, connect
//    operations, and close the sockets those own;
//  * watch plain descriptors for add_reader/add_writer (set_interest);
//  * send a file over one of its stream transports with the kernel's
//    zero-copy path, when it has one for that transport (start_sendfile).
// The readiness backend (src/selector/, epoll) implements these with
// non-blocking system calls on readiness; a completion backend (io_uring)
// submits the operations themselves. Nothing outside a backend's folder names
// its classes.
//
// Thread-safety: wakeup() from any thread; everything else on the loop's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>

#include "tulip/detail/inline_function.hpp"
#include "tulip/loop_options.hpp"
#include "tulip/socket_address.hpp"

namespace tulip {
class DatagramProtocol;
class DatagramTransport;
class EventLoop;
class Server;
class StreamProtocol;
class Transport;
}  // namespace tulip

namespace tulip::detail {

/// Backend-neutral event bits. (Their values are epoll's EPOLLIN and EPOLLOUT,
/// which spares the readiness backend a translation per event; other backends
/// translate.)
enum IoEvent : std::uint32_t {
  kReadable = 0x001,
  kWritable = 0x004,
};

/// Receives readiness events for one descriptor (add_reader/add_writer, and
/// the readiness backend's own objects).
class IoWatcher {
 public:
  /// `events` is a mix of IoEvent bits. An error or hang-up condition is
  /// reported as the watched bits, so the handler finds the cause in its syscall.
  virtual void on_io_event(std::uint32_t events) = 0;

 protected:
  ~IoWatcher() = default;
};

/// What the loop ends when it closes: live transports and connection attempts.
class LoopMember {
 public:
  /// The loop is closing: end now, tell the protocol (connection_lost with
  /// ECONNABORTED) if there is one, release everything.
  virtual void shutdown_with_loop() noexcept = 0;

  /// The loop registry's list runs through its members (loop_registry.hpp):
  /// no node of its own to allocate per connection. Only LoopMemberList
  /// touches these.
  struct RegistryHooks {
    std::shared_ptr<LoopMember> owner;  // the registry's reference, while listed
    LoopMember* previous = nullptr;
    LoopMember* next = nullptr;
  };
  RegistryHooks& registry_hooks() noexcept { return registry_hooks_; }

 protected:
  LoopMember() = default;
  LoopMember(const LoopMember&) = delete;
  LoopMember& operator=(const LoopMember&) = delete;
  ~LoopMember() = default;

 private:
  RegistryHooks registry_hooks_;
};

/// One listening socket of a Server, made by the backend; accepts while asked
/// to and hands each connection to the server (ServerAccess::on_accepted).
class Listener {
 public:
  virtual ~Listener() = default;  // stops accepting and closes the socket
  virtual int fd() const noexcept = 0;
  virtual const SocketAddress& address() const noexcept = 0;
  virtual void set_accepting(bool accepting) = 0;
};

/// A connect() in progress; destroying it stops waiting for it (the socket
/// stays open and is the caller's to close).
class PendingConnect {
 public:
  virtual ~PendingConnect() = default;
};

/// What a new stream transport is made of.
struct StreamSocket {
  int fd = -1;                               // connected; the transport owns it from now on
  std::shared_ptr<StreamProtocol> protocol;  // non-null
  std::shared_ptr<Server> server;            // the server that accepted it, if any
  SocketAddress peer;                        // the peer, if known (else asked of the socket)
};

/// What a new pipe transport is made of (connect_read_pipe /
/// connect_write_pipe, and the pipes of a child process).
struct PipeEnd {
  enum class Direction { kRead, kWrite };
  int fd = -1;  // non-blocking (prepare_pipe_descriptor); the transport owns it from now on
  Direction direction = Direction::kRead;
  bool watch_hang_up = false;                // kWrite: a FIFO or socket, whose reader's exit shows
  std::shared_ptr<StreamProtocol> protocol;  // non-null
};

/// What a new datagram transport is made of.
struct DatagramSocket {
  int fd = -1;                                 // bound and/or connected; owned from now on
  std::shared_ptr<DatagramProtocol> protocol;  // non-null
  std::optional<SocketAddress> remote;         // the peer of a connected endpoint
  std::size_t max_datagram_size = 0;           // longer datagrams are reported, not delivered
  InlineFunction<void()> on_release;           // runs once the socket is closed (a Unix
                                               // endpoint removes its socket file)
};

/// What the kernel's sendfile did for loop.sendfile (start_sendfile).
struct SendfileOutcome {
  std::size_t sent = 0;           // bytes the kernel sent
  std::error_code error;          // empty: the count was reached, or the file ended
  bool not_available = false;     // refused before the first byte: use the buffered path
  bool connection_ended = false;  // `error` ended the connection (it is closing)
};

/// A file to send over a stream transport with the kernel's zero-copy path.
struct SendfileJob {
  int file_fd = -1;          // a regular file, not owned
  std::uint64_t offset = 0;  // where to start reading it
  std::size_t count = 0;     // bytes to send; 0: up to the end of the file
  // Runs once, from the ready queue (never inside start_sendfile), with the
  // outcome. Not run if the loop closes first.
  InlineFunction<void(SendfileOutcome)> done;
  // True once the caller gave up: the transfer stops before its next chunk.
  InlineFunction<bool()> cancelled;
};

class IoBackend {
 public:
  virtual ~IoBackend() = default;

  virtual const char* name() const noexcept = 0;

  /// Waits up to `timeout_ms` (-1: no limit, 0: do not block) and collects the
  /// events that arrived, for dispatch() to deliver.
  virtual void poll(int timeout_ms) = 0;
  /// poll() and dispatch() in one: the loop's path when no callback was ready,
  /// so that I/O comes first in the iteration anyway.
  virtual void poll_and_dispatch(int timeout_ms) = 0;
  /// Delivers the events the last poll() collected. An event whose owner went
  /// away (or stopped wanting it) since the poll is dropped. An exception from
  /// one handler goes to the loop's exception handler; the rest still run.
  virtual void dispatch() = 0;

  /// Makes the current or next poll() return soon. Async-signal-safe and thread-safe.
  virtual void wakeup() noexcept = 0;

  /// Sets what `watcher` wants to hear about the plain descriptor `fd` (IoEvent
  /// bits; 0 stops watching). Interest 0 from a watcher that is not the
  /// current one changes nothing: no owner removes another's registration.
  virtual void set_interest(int fd, IoWatcher* watcher, std::uint32_t interest) = 0;

  /// True while a transport, listener or connect operation of this backend
  /// owns `fd` (add_reader/add_writer must not touch it).
  virtual bool owns(int fd) const noexcept = 0;

  /// Makes a transport for `socket` and starts it: it joins the loop's
  /// registry, connection_made is scheduled, reading starts after it, then
  /// `on_made` runs. On failure (the kernel refuses to watch the socket) the
  /// socket is closed and the exception propagates; nothing stays registered.
  virtual std::shared_ptr<Transport> start_stream_transport(StreamSocket socket,
                                                            InlineFunction<void()> on_made) = 0;

  /// Makes a transport for one end of a pipe and starts it, as
  /// start_stream_transport does for sockets (registry, connection_made
  /// scheduled, reading after it for a read end, then `on_made`; on failure
  /// the descriptor is closed and the exception propagates). A read end's
  /// transport refuses writes; a write end's reads nothing and closes when
  /// its reader goes away (asyncio's _UnixReadPipeTransport and
  /// _UnixWritePipeTransport).
  virtual std::shared_ptr<Transport> start_pipe_transport(PipeEnd pipe,
                                                          InlineFunction<void()> on_made) = 0;

  /// Makes a datagram transport for `socket` and starts it, as
  /// start_stream_transport does for streams (registry, connection_made
  /// scheduled, reading after it, then `on_made`; on failure the socket is
  /// closed and the exception propagates).
  virtual std::shared_ptr<DatagramTransport> start_datagram_transport(
      DatagramSocket socket, InlineFunction<void()> on_made) = 0;

  /// Makes the listener of `server` for the bound, listening socket `fd`
  /// (owned from now on); it accepts once set_accepting(true).
  virtual std::unique_ptr<Listener> make_listener(Server& server, int fd, int backlog) = 0;

  /// Connects the non-blocking socket `fd` (owned by the backend from now on,
  /// until close_socket or a transport takes it) to `address`; `done` runs
  /// once, on the loop's thread and never inside this call, with the outcome.
  virtual std::unique_ptr<PendingConnect> start_connect(
      int fd, const SocketAddress& address, InlineFunction<void(std::error_code)> done) = 0;

  /// Sends `job`'s file over `transport` with the kernel's sendfile, if
  /// `transport` is one of this backend's stream transports that can: then it
  /// takes `job` and returns true. The transport stops reading and refuses
  /// writes until the file is sent (asyncio's _sendfile_native); its buffered
  /// bytes go first. Returns false, `job` untouched, for a transport it cannot
  /// send files on natively. Throws RuntimeError if the transport cannot start
  /// one now (another is in progress, write_eof was called, it is closing).
  virtual bool start_sendfile(Transport& transport, SendfileJob& job) = 0;

  /// Forgets everything about `fd` and closes it.
  virtual void close_socket(int fd) noexcept = 0;

  /// A descriptor that polls readable while this backend has events to
  /// deliver (epoll's own descriptor), so that another backend can nest this
  /// one; -1 if there is none.
  virtual int event_fd() const noexcept { return -1; }
};

/// The readiness backend: epoll, level-triggered, with an eventfd for wakeups.
std::unique_ptr<IoBackend> make_epoll_backend(EventLoop& loop);

/// The concrete backend `kind` asks for (src/backend_selection.cpp): auto
/// reads TULIP_BACKEND, then takes io_uring when the kernel allows it (and
/// says which at debug level). Throws std::invalid_argument for an unknown
/// TULIP_BACKEND, RuntimeError when io_uring is asked for and unavailable.
BackendKind resolve_backend_kind(BackendKind kind);
/// Makes the backend of a resolved kind (epoll or io_uring), with the options
/// that concern it (the io_uring backend's zero-copy send threshold).
std::unique_ptr<IoBackend> make_backend(EventLoop& loop, BackendKind kind,
                                        const EventLoopOptions& options);

}  // namespace tulip::detail
