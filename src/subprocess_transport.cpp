#include "subprocess_transport.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"

namespace tulip::detail {

UnixSubprocessTransport::UnixSubprocessTransport(EventLoop& loop,
                                                 std::shared_ptr<SubprocessProtocol> protocol,
                                                 const bool (&pipes)[3])
    : loop_(loop), protocol_(std::move(protocol)) {
  for (int fd = 0; fd < 3; ++fd) pipes_[fd].wanted = pipes[fd];
}

UnixSubprocessTransport::~UnixSubprocessTransport() = default;

void UnixSubprocessTransport::watch(pid_t pid) {
  pid_ = pid;
  try {
    // The watch belongs to this transport and calls back only while it lives.
    watch_ =
        std::make_unique<ChildWatch>(loop_, pid, [this](int returncode) { on_exited(returncode); });
  } catch (...) {
    // Nothing watches the child: end it here rather than leave a zombie.
    ::kill(pid, SIGKILL);
    int ignored;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    throw;
  }
  LoopAccess::internals(loop_).registry.transports.emplace(
      static_cast<LoopMember*>(this),
      std::shared_ptr<LoopMember>(shared(), static_cast<LoopMember*>(this)));
}

void UnixSubprocessTransport::add_pipe(int fd, std::shared_ptr<Transport> pipe) {
  pipes_[fd].transport = std::move(pipe);
}

void UnixSubprocessTransport::start(Callback on_connected) {
  started_ = true;
  on_connected_ = std::move(on_connected);
  maybe_connected();
}

void UnixSubprocessTransport::abandon() noexcept {
  abandoned_ = true;
  pending_.clear();
  on_connected_ = nullptr;
  for (Pipe& pipe : pipes_) {
    if (pipe.transport) pipe.transport->abort();
  }
  closing_ = true;
  // No process_exited, no connection_lost: the child is killed and reaped
  // (release() destroys the watch) and everything goes now.
  release();
}

// ---- Getting connected ------------------------------------------------------------------

void UnixSubprocessTransport::pipe_connected(int fd) {
  pipes_[fd].connected = true;
  maybe_connected();
}

void UnixSubprocessTransport::maybe_connected() {
  if (!started_ || connected_ || abandoned_ || released_) return;
  for (const Pipe& pipe : pipes_) {
    if (pipe.wanted && !pipe.connected && !pipe.lost) return;
  }
  started_ = false;  // scheduled once
  // After every pipe's own connection_made, on a fresh stack (asyncio
  // schedules protocol.connection_made with call_soon too).
  loop_.call_soon([self = shared()] {
    auto& transport = static_cast<UnixSubprocessTransport&>(*self);
    if (transport.released_ || transport.abandoned_) return;
    transport.connected_ = true;
    transport.call_protocol(
        "Exception in protocol.connection_made()",
        [&](SubprocessProtocol& protocol) { protocol.connection_made(transport); });
    // What happened meanwhile, in its order. A callback may close the
    // transport; the queue is still delivered, as asyncio delivers its
    // pending calls.
    std::vector<Callback> pending = std::move(transport.pending_);
    transport.pending_.clear();
    for (Callback& call : pending) call();
    if (transport.on_connected_) std::exchange(transport.on_connected_, nullptr)();
  });
}

void UnixSubprocessTransport::deliver(Callback call) {
  if (abandoned_ || released_) return;
  if (!connected_) {
    pending_.push_back(std::move(call));
    return;
  }
  call();
}

template <class F>
void UnixSubprocessTransport::call_protocol(const char* what, F&& call) {
  if (!protocol_) return;
  // The protocol may replace itself or drop the transport: keep both alive.
  std::shared_ptr<SubprocessProtocol> protocol = protocol_;
  std::shared_ptr<SubprocessTransport> self = shared();
  try {
    call(*protocol);
  } catch (...) {
    ExceptionContext details = context(what);
    details.exception = std::current_exception();
    loop_.call_exception_handler(details);
    // As for a stream: a callback that throws ends its connection; here that
    // is the child, which close() kills if it still runs.
    close();
  }
}

// ---- Events from the pipes and the child ---------------------------------------------------

void UnixSubprocessTransport::pipe_data_received(int fd, std::string_view data) {
  if (abandoned_ || released_) return;
  if (!connected_) {
    // The bytes are borrowed from the read buffer: a queued call copies them.
    pending_.push_back([this, fd, copy = std::string(data)] {
      call_protocol("Exception in protocol.pipe_data_received()",
                    [&](SubprocessProtocol& protocol) { protocol.pipe_data_received(fd, copy); });
    });
    return;
  }
  call_protocol("Exception in protocol.pipe_data_received()",
                [&](SubprocessProtocol& protocol) { protocol.pipe_data_received(fd, data); });
}

void UnixSubprocessTransport::pipe_connection_lost(int fd, std::error_code error) {
  if (released_) return;
  pipes_[fd].lost = true;
  deliver([this, fd, error] {
    call_protocol("Exception in protocol.pipe_connection_lost()",
                  [&](SubprocessProtocol& protocol) { protocol.pipe_connection_lost(fd, error); });
  });
  // A pipe that closed before it connected no longer holds connection_made up.
  maybe_connected();
  try_finish();
}

void UnixSubprocessTransport::pipe_pause_writing() {
  if (!connected_) return;
  call_protocol("protocol.pause_writing() failed",
                [](SubprocessProtocol& protocol) { protocol.pause_writing(); });
}

void UnixSubprocessTransport::pipe_resume_writing() {
  if (!connected_) return;
  call_protocol("protocol.resume_writing() failed",
                [](SubprocessProtocol& protocol) { protocol.resume_writing(); });
}

void UnixSubprocessTransport::on_exited(int returncode) {
  returncode_ = returncode;
  if (abandoned_) {
    release();
    return;
  }
  try_finish();
}

void UnixSubprocessTransport::try_finish() {
  if (finished_ || !returncode_ || abandoned_ || released_) return;
  for (const Pipe& pipe : pipes_) {
    if (pipe.wanted && !pipe.lost) return;
  }
  finished_ = true;
  deliver([this] {
    call_protocol("Exception in protocol.process_exited()",
                  [](SubprocessProtocol& protocol) { protocol.process_exited(); });
  });
  // connection_lost always on a fresh stack, after process_exited.
  deliver([this] {
    loop_.call_soon(
        [self = shared()] { static_cast<UnixSubprocessTransport&>(*self).call_connection_lost(); });
  });
}

// ---- Closing -------------------------------------------------------------------------------

void UnixSubprocessTransport::close() {
  if (closing_) return;
  closing_ = true;
  for (Pipe& pipe : pipes_) {
    if (pipe.transport) pipe.transport->close();
  }
  // asyncio's close(): a child still running is killed; its exit then comes
  // as for any other, with process_exited and connection_lost.
  if (!returncode_ && watch_) {
    try {
      watch_->send_signal(SIGKILL);
    } catch (...) {
      // EPERM for a child that changed its credentials: nothing more to do.
    }
  }
}

void UnixSubprocessTransport::call_connection_lost() {
  if (released_) return;
  call_protocol("Exception in protocol.connection_lost()",
                [](SubprocessProtocol& protocol) { protocol.connection_lost({}); });
  release();
}

void UnixSubprocessTransport::release() noexcept {
  if (released_) return;
  released_ = true;
  pending_.clear();
  on_connected_ = nullptr;
  // A child that has not been reaped (only when the loop closes or starting
  // failed) is killed and reaped by the watch's destructor.
  watch_.reset();
  // The pipes' transports are lost by now, or abandoned; dropping them here
  // ends the cycle through their protocols.
  for (Pipe& pipe : pipes_) pipe.transport.reset();
  std::shared_ptr<SubprocessProtocol> protocol = std::move(protocol_);
  // Last: the registry's reference may be the one keeping this object alive;
  // callers hold their own.
  LoopAccess::internals(loop_).registry.transports.erase(static_cast<LoopMember*>(this));
}

void UnixSubprocessTransport::shutdown_with_loop() noexcept {
  if (released_) return;
  closing_ = true;
  if (watch_) watch_->kill_and_reap();
  if (watch_ && watch_->returncode()) returncode_ = watch_->returncode();
  for (Pipe& pipe : pipes_) {
    if (pipe.transport) pipe.transport->abort();
  }
  if (connected_ && protocol_ && !abandoned_) {
    try {
      protocol_->connection_lost(errno_code(ECONNABORTED));
    } catch (...) {
      // The loop is closing: there is no handler left to tell.
    }
  }
  release();
}

// ---- The rest of the API ---------------------------------------------------------------------

Transport* UnixSubprocessTransport::get_pipe_transport(int fd) const noexcept {
  if (fd < 0 || fd > 2) return nullptr;
  return pipes_[fd].transport.get();
}

void UnixSubprocessTransport::send_signal(int signum) {
  if (signum <= 0 || signum >= NSIG) {
    throw std::invalid_argument("send_signal(): invalid signal number " + std::to_string(signum));
  }
  if (watch_) watch_->send_signal(signum);
}

void UnixSubprocessTransport::terminate() { send_signal(SIGTERM); }

void UnixSubprocessTransport::kill() { send_signal(SIGKILL); }

void UnixSubprocessTransport::set_protocol(std::shared_ptr<SubprocessProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("set_protocol() needs a protocol, not null");
  if (protocol_ && !released_) {
    // The old protocol may be the one calling us: it lives until the next iteration.
    loop_.call_soon([retired = std::move(protocol_)] {});
  }
  protocol_ = std::move(protocol);
}

std::any UnixSubprocessTransport::get_extra_info(std::string_view name) const {
  // asyncio gives its Popen object as "subprocess"; here, the child's pid.
  if (name == "subprocess") return std::any(pid_);
  return {};
}

ExceptionContext UnixSubprocessTransport::context(const char* message) const {
  ExceptionContext details;
  details.message = message;
  details.transport = const_cast<UnixSubprocessTransport*>(this);
  details.protocol = protocol_.get();
  return details;
}

void SubprocessPipeProtocol::connection_lost(std::error_code error) {
  // Dropped now: the cycle through the owner ends with this pipe.
  std::shared_ptr<UnixSubprocessTransport> owner = std::move(owner_);
  owner->pipe_connection_lost(fd_, error);
}

}  // namespace tulip::detail
