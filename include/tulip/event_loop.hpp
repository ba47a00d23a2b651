// EventLoop: asyncio's event loop, for C++.
//
// The loop runs callbacks, timers and I/O on one thread, the thread that calls
// run_forever() / run_until_complete(). Semantics follow asyncio's
// BaseEventLoop (docs.python.org, "Event Loop"):
//
//  * One iteration polls for I/O (without blocking if callbacks are ready or the
//    loop is stopping, else until the next timer), dispatches I/O, moves due
//    timers to the ready queue, then runs exactly the callbacks that were ready
//    at that moment, in FIFO order. Callbacks scheduled meanwhile run in the next
//    iteration.
//  * stop() lets the current iteration finish, then run_forever() returns. If
//    stop() is called before run_forever(), the loop runs one iteration.
//  * An exception thrown by a callback never escapes the loop and never stops
//    it: it goes to the exception handler.
//  * Nothing a method is given runs synchronously inside that method.
//
// Deliberate differences from asyncio, and why:
//  * Callbacks are C++ callables (lambdas) taking no arguments, not a function
//    plus *args; capture what you need.
//  * call_soon_threadsafe returns nothing: a Handle is a loop-thread object, and
//    cancelling across threads would race with the callback starting.
//  * When callbacks are ready the loop does not make a zero-timeout poll every
//    iteration, only every kPollIntervalWhenBusy iterations: a chain of callbacks
//    then costs nanoseconds per step, not a system call. I/O is still serviced
//    at least that often, and always before the loop would block.
//
// Thread-safety: call_soon_threadsafe() may be called from any thread while the
// loop exists. Every other method must be called on the loop's thread (or, before
// the loop first runs, on the thread that owns it).
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tulip/address_info.hpp"
#include "tulip/connection.hpp"
#include "tulip/connection_options.hpp"
#include "tulip/datagram.hpp"
#include "tulip/detail/callback_node.hpp"
#include "tulip/detail/inline_function.hpp"
#include "tulip/detail/job_outcome.hpp"
#include "tulip/detail/time_conversion.hpp"
#include "tulip/errors.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/executor.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/handle.hpp"
#include "tulip/loop_options.hpp"
#include "tulip/pipes.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/subprocess.hpp"
#include "tulip/wait_hooks.hpp"

namespace tulip {

template <class T>
class Task;
class Server;

namespace detail {
class IoBackend;
struct LoopToken;
struct LoopInternals;
struct LoopAccess;
class TaskRegistry;
}  // namespace detail

/// A callback for the loop: any callable with signature void().
using Callback = detail::InlineFunction<void()>;

/// asyncio's event loop: callbacks, timers and I/O on one thread (see the file comment).
class TULIP_API EventLoop {
 public:
  /// Zero-timeout polls happen at most this many iterations apart while callbacks are ready.
  static constexpr unsigned kPollIntervalWhenBusy = 32;

  /// Creates a loop on the automatically chosen I/O backend (see
  /// EventLoopOptions: TULIP_BACKEND, else io_uring when available, else
  /// epoll). Throws OSError if the kernel refuses the resources (epoll or
  /// eventfd descriptors), std::invalid_argument if TULIP_BACKEND names no backend.
  EventLoop();
  /// Creates a loop as `options` say. Throws as EventLoop() does, and
  /// RuntimeError if options.backend is io_uring and io_uring is unavailable.
  explicit EventLoop(const EventLoopOptions& options);
  /// Closes the loop if it is not closed yet. Destroying a running loop is undefined.
  ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // ---- Scheduling callbacks -------------------------------------------------

  /// Schedules `callback` to run in the next iteration, after those already
  /// scheduled (FIFO). Never runs it synchronously. The loop owns the callable
  /// until it has run or was cancelled. Throws RuntimeError if the loop is closed.
  /// Throws std::invalid_argument, and schedules nothing, if `callback` is
  /// empty (a null pointer, an empty std::function or Callback).
  template <class F>
  Handle call_soon(F&& callback) {
    if (detail::is_empty_callable(callback)) throw_empty_callback("call_soon");
    detail::CallbackNode* node = new_node();
    try {
      node->callback.assign(std::forward<F>(callback));
    } catch (...) {
      // Copying the callable threw: the node goes back unused.
      detail::NodePool::release(node);
      throw;
    }
    // The ready queue keeps the node's first reference; the Handle gets another.
    ready_.push(node);
    detail::NodePool::add_ref(node);
    return Handle(node);
  }

  /// Like call_soon, callable from any thread; wakes the loop if it is sleeping
  /// in poll. Throws RuntimeError if the loop is closed, std::invalid_argument
  /// if `callback` is empty.
  void call_soon_threadsafe(Callback callback);

  /// Schedules `callback` at time() + delay_seconds. A negative or zero delay is
  /// allowed: the callback runs in deadline order with other due timers. A delay
  /// too large to represent is clamped to the end of time (the callback never
  /// runs, but its handle is valid). Throws std::invalid_argument for an empty
  /// callback or a NaN delay.
  TimerHandle call_later(double delay_seconds, Callback callback);

  /// Same, with the delay as a std::chrono::duration; huge durations clamp as above.
  template <class Rep, class Period>
  TimerHandle call_later(std::chrono::duration<Rep, Period> delay, Callback callback) {
    return call_later_ns(detail::saturating_nanoseconds(delay), std::move(callback));
  }

  /// Schedules `callback` at absolute time `when` (seconds, the time() scale).
  /// Timers with equal deadlines run in the order they were scheduled.
  TimerHandle call_at(double when, Callback callback);

  /// The loop's clock: CLOCK_MONOTONIC, in seconds.
  double time() const noexcept;

  // ---- Running and stopping -------------------------------------------------

  /// Runs until stop() is called. Throws RuntimeError if the loop is closed or
  /// already running (on any thread).
  void run_forever();

  /// Runs until `future` is done and returns its result (or rethrows its
  /// exception / CancelledError). Throws RuntimeError if the loop stopped before
  /// the future was done, std::invalid_argument (asyncio: ValueError) at once if
  /// the future belongs to another loop or is empty.
  template <class T>
  T run_until_complete(Future<T> future);

  /// Asks run_forever() to return once the current iteration has finished.
  void stop() noexcept { stopping_ = true; }

  /// Drops every pending callback and timer and releases the loop's resources.
  /// Idempotent. Throws RuntimeError if the loop is running.
  void close();

  /// True while run_forever() or run_until_complete() runs.
  bool is_running() const noexcept { return running_.load(std::memory_order_relaxed); }
  /// True once close() was called.
  bool is_closed() const noexcept { return closed_; }

  /// The I/O backend this loop runs on: "epoll" or "io_uring".
  const char* backend_name() const noexcept;

  /// A new pending Future bound to this loop (asyncio's loop.create_future()).
  /// Throws RuntimeError if the loop is closed.
  template <class T = void>
  Future<T> create_future() {
    if (closed_) throw_closed();
    return Future<T>(*this);
  }

  // ---- Coroutines (defined in task.hpp) ---------------------------------------

  /// Schedules the coroutine `coro` as a task (asyncio's loop.create_task): its
  /// first step runs in a later iteration, never inside create_task. Returns the
  /// same Task, now running on this loop. An empty `name` becomes "Task-<n>".
  /// Throws RuntimeError if the loop is closed or `coro` was already started.
  template <class T>
  Task<T> create_task(Task<T> coro, std::string name = {});

  // ---- Connections (see connection.hpp) ---------------------------------------

  /// Opens a TCP connection; completes with Connection<P>{transport, protocol}
  /// once the protocol's connection_made has run. Cancelling the Future stops
  /// the attempt: the socket is closed and the factory is never called.
  template <class Factory>
  auto create_connection(Factory&& protocol_factory, std::string host, std::uint16_t port,
                         ConnectOptions options = {});

  /// Wraps a stream socket that is already connected (asyncio's
  /// connect_accepted_socket; also what asyncio's create_connection(sock=...)
  /// does): the transport takes ownership of `fd` in every case, success or
  /// failure (cancellation included). Completes like create_connection.
  template <class Factory>
  auto connect_accepted_socket(Factory&& protocol_factory, int fd);

  /// Opens a TCP server; completes with the Server once it is listening.
  /// Cancelling the Future closes the server if it was already made.
  template <class Factory>
  Future<std::shared_ptr<Server>> create_server(Factory&& protocol_factory, std::string host,
                                                std::uint16_t port, ServerOptions options = {});

  /// Serves on `sock`, a listening TCP or Unix stream socket made elsewhere
  /// (asyncio's create_server(sock=...)); the server owns it from this call on,
  /// whatever the outcome. Of `options`, backlog (accepts per event),
  /// start_serving, nodelay and keepalive apply; the socket's own binding stays.
  /// Fails with std::invalid_argument for a descriptor that is not a listening
  /// stream socket, OSError for one that is not a socket at all.
  template <class Factory>
  Future<std::shared_ptr<Server>> create_server(Factory&& protocol_factory, int sock,
                                                ServerOptions options = {});

  // ---- Unix domain sockets (see connection.hpp) --------------------------------

  /// Connects to the Unix stream socket at `path` (a leading NUL byte: an
  /// abstract name); completes as create_connection does. A path that cannot
  /// be a Unix address fails the Future with OSError naming it.
  template <class Factory>
  auto create_unix_connection(Factory&& protocol_factory, std::string path,
                              UnixConnectOptions options = {});

  /// Opens a Unix stream server at `path`; completes with the Server once it
  /// is listening. A stale socket file there is replaced; a live one (a server
  /// answers) fails the Future with OSError (EADDRINUSE) and is left alone.
  template <class Factory>
  Future<std::shared_ptr<Server>> create_unix_server(Factory&& protocol_factory, std::string path,
                                                     UnixServerOptions options = {});

  /// Serves on `sock`, a listening Unix stream socket made elsewhere; as
  /// create_server(factory, sock), but only the Unix family is accepted. The
  /// server never removes the socket's file.
  template <class Factory>
  Future<std::shared_ptr<Server>> create_unix_server(Factory&& protocol_factory, int sock,
                                                     UnixServerOptions options = {});

  // ---- Pipes (see pipes.hpp) ----------------------------------------------------

  /// Wraps the read end of a pipe (a FIFO, a socket or a character device
  /// too) in a ReadTransport (asyncio's connect_read_pipe); completes with
  /// ReadPipe<P>{transport, protocol} once connection_made has run. The
  /// transport owns `fd` from this call on, whatever the outcome. A regular
  /// file fails the Future with std::invalid_argument.
  template <class Factory>
  auto connect_read_pipe(Factory&& protocol_factory, int fd);

  /// Wraps the write end of a pipe in a WriteTransport (asyncio's
  /// connect_write_pipe); completes with WritePipe<P>{transport, protocol}
  /// once connection_made has run. As connect_read_pipe for `fd`.
  template <class Factory>
  auto connect_write_pipe(Factory&& protocol_factory, int fd);

  // ---- Subprocesses (see subprocess.hpp) ----------------------------------------

  /// Starts the program argv[0] with the arguments argv[1...] (asyncio's
  /// loop.subprocess_exec); completes with SubprocessConnection<P>{transport,
  /// protocol} once the protocol's connection_made has run. A program that
  /// cannot be started fails the Future with OSError (the spawn's errno, the
  /// program named); an empty argv, or an argument or environment entry that
  /// cannot be a C string, with std::invalid_argument. Cancelling the Future
  /// before the child starts means it never starts; after, it is killed.
  template <class Factory>
  auto subprocess_exec(Factory&& protocol_factory, std::vector<std::string> argv,
                       SubprocessOptions options = {});

  /// Runs `command` with /bin/sh -c (asyncio's loop.subprocess_shell);
  /// otherwise as subprocess_exec. Quoting is the caller's business.
  template <class Factory>
  auto subprocess_shell(Factory&& protocol_factory, std::string command,
                        SubprocessOptions options = {});

  // ---- TLS on an open connection (see tls.hpp) ----------------------------------

  /// Upgrades the open stream connection of `transport` to TLS (asyncio's
  /// loop.start_tls): the transport's protocol is replaced by a TLS layer,
  /// the handshake runs, and the Future completes with the new transport,
  /// which `protocol` (already connected: its connection_made is not called
  /// again) uses from then on. Use the old transport no more: closing the
  /// new one closes it. Bytes the old transport has not yet delivered are
  /// read by the TLS layer, so the peer must start the handshake only after
  /// the exchange that asked for it.
  ///
  /// The Future fails with SslError / SslCertVerificationError if the
  /// handshake fails, ConnectionError if the connection is lost or the
  /// handshake times out (the connection is then closed and `protocol` hears
  /// nothing more, as asyncio), std::invalid_argument for bad options (a
  /// context of the wrong side, no server_hostname for a context that checks
  /// hostnames), RuntimeError if the transport is closing. Cancelling it
  /// aborts the connection.
  Future<std::shared_ptr<Transport>> start_tls(Transport& transport,
                                               std::shared_ptr<StreamProtocol> protocol,
                                               SslContext context, StartTlsOptions options = {});

  // ---- Datagrams (see datagram.hpp) -------------------------------------------

  /// Opens a UDP endpoint: bound to `local_addr` and/or connected to
  /// `remote_addr` (either may be nullopt); completes with
  /// DatagramEndpoint<P>{transport, protocol} once connection_made has run.
  /// Fails with OSError naming the address (bind, connect, resolution), or
  /// std::invalid_argument when neither address nor options.family says which
  /// family to use. Cancelling the Future before it completes means no
  /// protocol is made.
  template <class Factory>
  auto create_datagram_endpoint(Factory&& protocol_factory, std::optional<HostPort> local_addr,
                                std::optional<HostPort> remote_addr = std::nullopt,
                                DatagramOptions options = {});

  /// Opens a Unix datagram endpoint (asyncio's create_datagram_endpoint with
  /// family=AF_UNIX): bound to `local_path` and/or connected to `remote_path`
  /// (either may be nullopt; a leading NUL byte: an abstract name; an empty
  /// local path: a kernel-chosen abstract name). Completes as
  /// create_datagram_endpoint does; datagram_received's address is the
  /// sender's path. A stale socket file at `local_path` is replaced; a live
  /// one fails the Future with OSError (EADDRINUSE) and is left alone; a path
  /// too long for sun_path, in a missing or unwritable directory, or a
  /// `remote_path` nobody is bound to fails it with OSError naming the path.
  template <class Factory>
  auto create_unix_datagram_endpoint(Factory&& protocol_factory,
                                     std::optional<std::string> local_path,
                                     std::optional<std::string> remote_path = std::nullopt,
                                     UnixDatagramOptions options = {});

  // ---- Socket operations (asyncio's loop.sock_*; src/socket_operations.cpp) ----
  //
  // Each works on a non-blocking socket the caller owns and keeps owning: it
  // tries the system call at once and, if the socket is not ready, waits for
  // readiness with add_reader / add_writer on `fd` and tries again. The Future
  // completes with the outcome; an OS error fails it with OSError naming the
  // operation, the descriptor and the cause. Cancelling the Future stops the
  // wait (bytes already sent by sock_sendall stay sent). A descriptor that is
  // negative, not open, blocking, or owned by a transport of this loop fails
  // the Future at once (std::invalid_argument, OSError, RuntimeError). One
  // operation may wait per direction and descriptor: another reader or writer
  // already on `fd` (an add_reader, or a pending sock_recv) fails the Future
  // with RuntimeError rather than replacing it. Close `fd` only once its
  // Futures are done or cancelled: a closed descriptor is no longer watched.

  /// Receives up to `nbytes` bytes; an empty string at EOF.
  Future<std::string> sock_recv(int fd, std::size_t nbytes);
  /// Receives into `buffer` (which must stay valid until the Future is done);
  /// completes with the number of bytes received, 0 at EOF.
  Future<std::size_t> sock_recv_into(int fd, std::span<std::byte> buffer);
  /// Receives one datagram of up to `bufsize` bytes, with its sender.
  Future<std::pair<std::string, SocketAddress>> sock_recvfrom(int fd, std::size_t bufsize);
  /// Receives one datagram into `buffer` (valid until done), with its sender.
  Future<std::pair<std::size_t, SocketAddress>> sock_recvfrom_into(int fd,
                                                                   std::span<std::byte> buffer);
  /// Sends all of `data` (taken over: the caller's copy is free at once),
  /// waiting for writability as often as needed.
  Future<void> sock_sendall(int fd, std::string data);
  /// Sends `data` as one datagram to `address`; completes with the bytes sent.
  Future<std::size_t> sock_sendto(int fd, std::string data, SocketAddress address);
  /// Connects to `address` (TCP, Unix or UDP).
  Future<void> sock_connect(int fd, SocketAddress address);
  /// Accepts one connection on a listening socket: the new descriptor
  /// (non-blocking, close-on-exec, owned by the caller) and the peer's address.
  Future<std::pair<int, SocketAddress>> sock_accept(int fd);

  // ---- Sending files (src/sendfile.cpp) ----------------------------------------

  /// Sends `count` bytes of the regular file `file_fd` (0: up to its end)
  /// from `offset` over `transport` (asyncio's loop.sendfile); completes with
  /// the number of bytes sent, once they are all handed to the kernel or to
  /// the transport's buffer.
  ///
  /// A TCP or Unix stream transport sends with the kernel's sendfile(2),
  /// without copying through user space: bytes already buffered go first, then
  /// the file, one chunk per writability event. Meanwhile the transport
  /// reads nothing (reading resumes afterwards if it was on) and write() throws
  /// RuntimeError, as asyncio's. When the kernel cannot send this file (it
  /// refuses before the first byte), or the transport is not a socket
  /// transport, the buffered path reads the file in 256 KiB chunks and writes
  /// them through the transport, waiting on pause_writing / resume_writing;
  /// for its duration the transport's protocol is a stand-in
  /// (get_protocol() returns it) that passes on the connection's loss. With
  /// `fallback` false that path is not taken: the Future fails with
  /// SendfileNotAvailableError or RuntimeError instead.
  ///
  /// A file that ends before `count` bytes (shorter, or truncated while it is
  /// sent) completes the Future with the bytes that were sent. Afterwards the
  /// file's position is just after the last byte sent (unchanged if none
  /// was). `file_fd` stays the caller's; keep it open until the Future is done.
  ///
  /// Fails the Future with std::invalid_argument for a negative offset or a
  /// descriptor that is not a regular file (a pipe, a socket, a directory:
  /// the buffered path reads on the loop's thread, where those could block
  /// it), OSError for a descriptor that is not open, RuntimeError if the
  /// transport is closing or already sending a file, and ConnectionError
  /// (naming the bytes sent) if the transport is closed, aborted or lost
  /// before the end: close() and abort() end a sendfile in progress. A socket
  /// error that ends the sendfile also ends the connection (connection_lost
  /// with that error). Cancelling the Future stops the transfer before its
  /// next chunk.
  Future<std::size_t> sendfile(Transport& transport, int file_fd, std::int64_t offset = 0,
                               std::size_t count = 0, bool fallback = true);

  /// Sends `count` bytes of the regular file `file_fd` (0: up to its end)
  /// from `offset` over the connected, non-blocking stream socket `sock_fd`
  /// that the caller owns (asyncio's loop.sock_sendfile); completes with the
  /// number of bytes sent. Uses sendfile(2), one call per writability event;
  /// when the kernel cannot send this file, pread() and send() of 256 KiB
  /// chunks (unless `fallback` is false: SendfileNotAvailableError). A socket
  /// that is not SOCK_STREAM fails with std::invalid_argument; the rest is as
  /// for sendfile() and the other sock_* operations.
  Future<std::size_t> sock_sendfile(int sock_fd, int file_fd, std::int64_t offset = 0,
                                    std::size_t count = 0, bool fallback = true);

  // ---- Name lookups (src/name_lookup.cpp) --------------------------------------

  /// getaddrinfo(3) off the loop's thread (asyncio's loop.getaddrinfo): every
  /// answer for `host` and `service` (a port number or a service name; either
  /// may be empty) with the given hints. Fails the Future with OSError
  /// (category tulip, Error::kNameResolution) naming the host and giving
  /// gai_strerror's text. Never blocks the loop.
  Future<std::vector<AddressInfo>> getaddrinfo(std::string host, std::string service,
                                               int family = 0, int type = 0, int protocol = 0,
                                               int flags = 0);
  /// getnameinfo(3) off the loop's thread (asyncio's loop.getnameinfo): the
  /// host and service names of `address`, with NI_* `flags`.
  Future<NameInfo> getnameinfo(SocketAddress address, int flags = 0);

  // ---- Executors (executor.hpp; src/loop_executors.cpp) --------------------------

  /// Runs `function` (any callable taking no arguments) on `executor`, or on
  /// the loop's default executor if `executor` is null (asyncio's
  /// loop.run_in_executor). Returns at once a Future that completes on this
  /// loop's thread, through call_soon_threadsafe, with what `function`
  /// returned or the exception it threw. Cancelling the Future before the job
  /// starts means it never runs; once started, it runs to the end and its
  /// result is dropped. `function` is moved to the worker thread, runs there,
  /// and is destroyed on the loop's thread after it has run (on the worker if
  /// the loop closed meanwhile); capture what may be used from another
  /// thread. Closing the loop does not wait for a job in progress: its Future
  /// stays pending and its late answer is dropped. Throws RuntimeError if the
  /// loop is closed, or, for the default executor, after
  /// shutdown_default_executor(); std::invalid_argument for an empty callable;
  /// and what the executor's submit() throws (RuntimeError once it was shut down).
  template <class F>
  auto run_in_executor(std::shared_ptr<Executor> executor, F&& function);

  /// Makes `executor` the default one for run_in_executor(nullptr, ...) and for
  /// the loop's name lookups (asyncio's set_default_executor). A pool the loop
  /// made itself is shut down without waiting. Throws std::invalid_argument for null.
  void set_default_executor(std::shared_ptr<Executor> executor);

  /// Shuts the default executor down and waits, without blocking the loop,
  /// for its threads to end (asyncio's shutdown_default_executor): a thread
  /// of its own joins them. Completes when they have ended, or after `timeout`
  /// seconds (then a warning is logged and they are let go; the Future still
  /// completes normally). From then on run_in_executor(nullptr, ...) and the
  /// loop's name lookups fail with RuntimeError.
  Future<void> shutdown_default_executor(std::optional<double> timeout = std::nullopt);

  // ---- Watching file descriptors ---------------------------------------------

  /// Calls `callback` whenever `fd` is readable, until remove_reader(fd); it
  /// runs in the iteration that saw the readiness, after the callbacks that
  /// were already ready (asyncio's order). Replaces a previous reader of `fd`.
  /// The loop does not own `fd`: close it only after removing it. Throws
  /// RuntimeError if a transport, server or connection attempt of this loop
  /// owns `fd` (asyncio: "File descriptor ... is used by transport"),
  /// std::invalid_argument for a negative fd or an empty callback.
  void add_reader(int fd, Callback callback);
  /// Stops watching `fd` for reading; returns whether it was watched. Throws
  /// RuntimeError, as add_reader, for a descriptor the loop's transports own.
  bool remove_reader(int fd);
  /// As add_reader, for writability.
  void add_writer(int fd, Callback callback);
  /// As remove_reader, for writability.
  bool remove_writer(int fd);

  // ---- Unix signals -----------------------------------------------------------

  /// Runs `callback` on the loop (never inside the signal handler) whenever
  /// `signum` is delivered. One loop per process may handle signals (others get
  /// RuntimeError; safe to race from loops on different threads). Throws
  /// std::invalid_argument for SIGKILL/SIGSTOP, an invalid number or an empty
  /// callback.
  void add_signal_handler(int signum, Callback callback);
  /// Restores the default disposition of `signum`; returns whether it was handled.
  bool remove_signal_handler(int signum);

  // ---- Errors -----------------------------------------------------------------

  /// Installs the handler called for errors no caller could receive; an empty
  /// function restores the default, which logs.
  void set_exception_handler(ExceptionHandler handler);
  /// The installed handler; empty when the default one is in use.
  const ExceptionHandler& get_exception_handler() const noexcept { return exception_handler_; }
  /// Calls the installed handler, or the default one. Never throws.
  void call_exception_handler(const ExceptionContext& context) noexcept;
  /// Logs `context` as one line at error level.
  void default_exception_handler(const ExceptionContext& context) noexcept;

  // ---- Embedding ----------------------------------------------------------------

  /// Installs `hooks` (not owned; null removes them) to run around every poll
  /// that may block; see wait_hooks.hpp. The hooks must outlive the loop or be
  /// removed first. Loop thread only, and not from inside a hook.
  void set_wait_hooks(WaitHooks* hooks) noexcept { wait_hooks_ = hooks; }
  /// The installed hooks, or null.
  WaitHooks* wait_hooks() const noexcept { return wait_hooks_; }

  // ---- Diagnostics --------------------------------------------------------------

  /// Entries in the timer heap, cancelled ones not yet dropped included.
  std::size_t scheduled_timer_count() const noexcept { return timers_.size(); }
  /// Callbacks waiting in the ready queue.
  std::size_t ready_count() const noexcept { return ready_.size(); }

 private:
  /// @cond INTERNAL
  friend class Handle;
  // tulip's own sources reach the loop's internals through this (src/loop_access.hpp).
  friend struct detail::LoopAccess;

  // Makes the loop on an already chosen backend (EventLoop(options) chooses).
  EventLoop(BackendKind resolved, const EventLoopOptions& options);

  detail::CallbackNode* new_node() {
    if (closed_) throw_closed();
    return pool_->acquire();
  }
  [[noreturn]] static void throw_closed();
  // Throws std::invalid_argument naming `method`; out of line, off the hot path.
  [[noreturn]] static void throw_empty_callback(const char* method);

  std::int64_t now_ns() const noexcept;
  TimerHandle call_at_ns(std::int64_t when_ns, Callback callback);
  TimerHandle call_later_ns(std::int64_t delay_ns, Callback callback);

  // run_in_executor's untyped half: `work` on a worker, then `done` here.
  void submit_job(std::shared_ptr<Executor> executor, Executor::Job work, Callback done);

  void run_once();
  static void run_batch(detail::CallbackNode* node, EventLoop& loop);
  void drain_threadsafe_queue();
  void drop_cancelled_timers();
  void on_timer_cancelled(detail::CallbackNode* node) noexcept;

  // Ready queue and timer heap: the hot path, kept inline in this object.
  detail::NodePool* pool_;
  detail::ReadyQueue ready_;
  std::vector<detail::CallbackNode*> timers_;  // binary min-heap on (when_ns, sequence)
  std::size_t cancelled_timers_ = 0;
  std::uint64_t timer_sequence_ = 0;
  unsigned iterations_since_poll_ = 0;

  bool stopping_ = false;
  bool closed_ = false;
  std::atomic<bool> running_{false};

  // call_soon_threadsafe: a locked vector, and a flag read without the lock.
  std::mutex threadsafe_mutex_;
  std::vector<Callback> threadsafe_queue_;
  std::atomic<bool> threadsafe_pending_{false};

  ExceptionHandler exception_handler_;
  WaitHooks* wait_hooks_ = nullptr;
  std::unique_ptr<detail::IoBackend> backend_;
  std::unique_ptr<detail::LoopInternals> internals_;
  std::shared_ptr<detail::LoopToken> token_;
  // Coroutine support (task.hpp), kept out of the loop's own code: the registry
  // of pending tasks. close() destroys the frames of tasks still pending in it,
  // so a loop closed with suspended tasks leaks nothing.
  std::unique_ptr<detail::TaskRegistry> task_registry_;
  /// @endcond
};

}  // namespace tulip

// The member templates' bodies.
#include "tulip/detail/event_loop_templates.hpp"  // IWYU pragma: export
