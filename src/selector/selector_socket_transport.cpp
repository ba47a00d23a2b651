#include "selector_socket_transport.hpp"

#include <limits.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <vector>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "server_access.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/log.hpp"
#include "tulip/peer_credentials.hpp"
#include "tulip/server.hpp"

namespace tulip::detail {
namespace {

// The most buffers one sendmsg() is given; the kernel's limit is IOV_MAX (1024).
constexpr std::size_t kMaxIovecs = 64;

}  // namespace

std::shared_ptr<Transport> EpollBackend::start_stream_transport(StreamSocket socket,
                                                                InlineFunction<void()> on_made) {
  claim(socket.fd);
  auto transport = std::make_shared<SelectorSocketTransport>(*this, std::move(socket));
  transport->start(std::move(on_made));
  return transport;
}

SelectorSocketTransport::SelectorSocketTransport(EpollBackend& backend, StreamSocket socket)
    : loop_(backend.loop()),
      backend_(backend),
      fd_(socket.fd),
      server_(std::move(socket.server)),
      peername_(socket.peer.empty() ? SocketAddress::peer_of(socket.fd) : socket.peer),
      sockname_(SocketAddress::local_of(socket.fd)) {
  set_protocol(std::move(socket.protocol));
}

SelectorSocketTransport::~SelectorSocketTransport() {
  // Normally release() ran long ago; this only matters for a transport whose
  // start() failed before it could release.
  if (!released_) backend_.close_socket(fd_);
}

void SelectorSocketTransport::start(Callback on_made) {
  // Watch for reads now (on_readable ignores them until connection_made has
  // run): a connector hands its registration over here, so that one
  // EPOLL_CTL_MOD replaces a DEL and an ADD. This is the step the kernel may
  // refuse (ENOMEM, ENOSPC): then nothing else has been registered yet.
  try {
    watch_as_needed();
  } catch (...) {
    released_ = true;
    lost_ = closing_ = true;
    backend_.close_socket(std::exchange(fd_, -1));
    throw;
  }
  LoopAccess::internals(loop_).registry.transports.emplace(
      static_cast<LoopMember*>(this),
      std::shared_ptr<LoopMember>(shared(), static_cast<LoopMember*>(this)));
  if (server_) ServerAccess::attach(*server_, this);
  // connection_made runs from the ready queue, never inside the accept or
  // connect handler; reading starts only after it, as in asyncio.
  loop_.call_soon([self = shared(), on_made = std::move(on_made)]() mutable {
    auto& transport = static_cast<SelectorSocketTransport&>(*self);
    if (transport.protocol_ && !transport.released_) {
      try {
        transport.protocol_->connection_made(transport);
      } catch (...) {
        transport.protocol_failed("Exception in protocol.connection_made()");
      }
      transport.reading_started_ = true;
      transport.update_interest();
      // Bytes that arrived before connection_made are waiting: level-triggered
      // readiness reports them on the next poll.
    }
    if (on_made) on_made();
  });
}

// ---- Protocol and extra info ---------------------------------------------------

void SelectorSocketTransport::set_protocol(std::shared_ptr<StreamProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("set_protocol() needs a protocol, not null");
  if (dynamic_cast<Protocol*>(protocol.get()) == nullptr &&
      dynamic_cast<BufferedProtocol*>(protocol.get()) == nullptr) {
    throw std::invalid_argument(
        "set_protocol() needs a tulip::Protocol or tulip::BufferedProtocol; a class derived "
        "from StreamProtocol alone cannot receive data");
  }
  if (protocol_ && !released_) {
    // The old protocol may be the one calling us, from inside one of its own
    // callbacks (an upgrade in data_received is the usual place): it must
    // outlive that call. It is released on the next iteration, on a fresh stack.
    loop_.call_soon([retired = std::move(protocol_)] {});
  }
  protocol_ = std::move(protocol);
  // Resolved once here so that every read dispatches without a dynamic_cast.
  data_protocol_ = dynamic_cast<Protocol*>(protocol_.get());
  buffered_protocol_ =
      data_protocol_ != nullptr ? nullptr : dynamic_cast<BufferedProtocol*>(protocol_.get());
}

std::any SelectorSocketTransport::get_extra_info(std::string_view name) const {
  if (name == "peername") return peername_.empty() ? std::any{} : std::any(peername_);
  if (name == "sockname") return sockname_.empty() ? std::any{} : std::any(sockname_);
  if (name == "socket") return std::any(fd_);
  if (name == "peercred" && fd_ >= 0 && sockname_.family() == AF_UNIX) {
    // Asked of the kernel when wanted: most connections never need it.
    ucred credentials{};
    socklen_t length = sizeof(credentials);
    if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return {};
    return std::any(PeerCredentials{credentials.pid, credentials.uid, credentials.gid});
  }
  return {};
}

// ---- Events ------------------------------------------------------------------

void SelectorSocketTransport::on_io_event(std::uint32_t events) {
  if (events & kReadable) on_readable();
  // The read handler may have closed or aborted the transport.
  if ((events & kWritable) && !lost_) on_writable();
}

void SelectorSocketTransport::on_readable() {
  if (!reading_started_ || closing_ || reading_paused_ || eof_received_) return;
  if (buffered_protocol_ != nullptr) {
    read_into_buffered_protocol();
  } else {
    read_into_protocol();
  }
}

void SelectorSocketTransport::read_into_protocol() {
  char* buffer = backend_.read_buffer();
  ssize_t n = receive(fd_, buffer, EpollBackend::kReadBufferSize);
  if (n < 0) {
    read_failed(static_cast<int>(-n));
    return;
  }
  if (n == 0) {
    on_eof();
    return;
  }
  if (data_protocol_ == nullptr) return;
  try {
    data_protocol_->data_received(std::string_view(buffer, static_cast<std::size_t>(n)));
  } catch (...) {
    protocol_failed("Fatal error: protocol.data_received() call failed.");
  }
}

void SelectorSocketTransport::read_into_buffered_protocol() {
  std::span<std::byte> buffer;
  BufferedProtocol* target = buffered_protocol_;
  try {
    buffer = target->get_buffer(EpollBackend::kReadBufferSize);
  } catch (...) {
    protocol_failed("Fatal error: protocol.get_buffer() call failed.");
    return;
  }
  // get_buffer may have closed, aborted or paused the transport, or replaced
  // the protocol. Reading then stops here: receiving anyway would hand the
  // protocol bytes (or an EOF) after it gave the connection up or asked for no
  // more, or fill the buffer of a protocol that no longer receives. (A new
  // protocol gets the bytes at the next readiness.)
  if (closing_ || reading_paused_ || target != buffered_protocol_) return;
  if (buffer.empty()) {
    loop_.call_exception_handler(context("Fatal error: get_buffer() returned an empty buffer"));
    force_close(make_error_code(Error::kEmptyBuffer));
    return;
  }
  ssize_t n = receive(fd_, buffer.data(), buffer.size());
  if (n < 0) {
    read_failed(static_cast<int>(-n));
    return;
  }
  if (n == 0) {
    on_eof();
    return;
  }
  try {
    buffered_protocol_->buffer_updated(static_cast<std::size_t>(n));
  } catch (...) {
    protocol_failed("Fatal error: protocol.buffer_updated() call failed.");
  }
}

void SelectorSocketTransport::read_failed(int error) {
  if (!would_block(error)) socket_failed(errno_code(error), "Fatal read error on socket transport");
}

void SelectorSocketTransport::on_eof() {
  eof_received_ = true;
  update_interest();  // nothing more will come: stop watching for reads
  bool keep_open = false;
  try {
    keep_open = protocol_ && protocol_->eof_received();
  } catch (...) {
    protocol_failed("Fatal error: protocol.eof_received() call failed.");
    return;
  }
  if (!keep_open) close();
}

void SelectorSocketTransport::on_writable() {
  if (!buffer_.empty()) {
    iovec buffers[kMaxIovecs];
    std::size_t count = buffer_.gather(buffers, kMaxIovecs);
    ssize_t n = send_now(buffers, count);
    if (n <= 0) return;  // the kernel took nothing, or the connection failed
    buffer_.consume(static_cast<std::size_t>(n));
    maybe_resume_protocol();
    if (lost_ || !buffer_.empty()) return;  // resume_writing may have aborted us
  }
  if (sendfile_) {
    // The bytes written before loop.sendfile have gone; now the file.
    send_file_chunk();
    return;
  }
  update_interest();
  if (closing_) {
    schedule_connection_lost({});
  } else if (eof_requested_ && !eof_sent_) {
    ::shutdown(fd_, SHUT_WR);
    eof_sent_ = true;
  }
}

// ---- Writing -----------------------------------------------------------------

bool SelectorSocketTransport::refuse_write(std::size_t bytes) {
  if (bytes == 0) return false;
  if (eof_requested_) throw RuntimeError("Cannot call write() after write_eof()");
  // As asyncio: bytes written now would land in the middle of the file.
  if (sendfile_) throw RuntimeError("unable to write; sendfile is in progress");
  if (closing_ || lost_) {
    // asyncio counts silently and warns from the fifth write; one warning at the
    // first dropped write tells the user sooner and does not spam.
    if (dropped_writes_++ == 0) {
      log(LogLevel::kWarning, "write() after the transport was closed: " + std::to_string(bytes) +
                                  " bytes dropped (peer " + peername_.to_string() + ")");
    }
  }
  return false;
}

ssize_t SelectorSocketTransport::send_now(const iovec* buffers, std::size_t count) {
  ssize_t n = send_buffers(fd_, buffers, count);
  if (n >= 0) return n;
  if (would_block(static_cast<int>(-n))) return 0;
  socket_failed(errno_code(static_cast<int>(-n)), "Fatal write error on socket transport");
  return -1;
}

void SelectorSocketTransport::write(std::string_view data) {
  if (!accept_write(data.size())) return;
  if (buffer_.empty()) {
    iovec buffer{const_cast<char*>(data.data()), data.size()};
    ssize_t sent = send_now(&buffer, 1);
    if (sent < 0 || static_cast<std::size_t>(sent) == data.size()) return;
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  buffer_.append(data);
  after_buffer_grew();
}

void SelectorSocketTransport::write(std::string&& data) {
  if (!accept_write(data.size())) return;
  std::size_t sent = 0;
  if (buffer_.empty()) {
    iovec buffer{data.data(), data.size()};
    ssize_t n = send_now(&buffer, 1);
    if (n < 0 || static_cast<std::size_t>(n) == data.size()) return;
    sent = static_cast<std::size_t>(n);
    // The buffer was empty, so this string becomes its front chunk and the bytes
    // already sent are skipped by offset instead of being copied away.
    buffer_.append(std::move(data));
    buffer_.consume(sent);
  } else {
    buffer_.append(std::move(data));
  }
  after_buffer_grew();
}

void SelectorSocketTransport::writelines(std::span<const std::string_view> buffers) {
  std::size_t total = 0;
  for (std::string_view piece : buffers) total += piece.size();
  if (!accept_write(total)) return;
  std::size_t skip = 0;  // bytes of `buffers` the kernel already took
  if (buffer_.empty()) {
    std::vector<iovec> vectors;
    vectors.reserve(std::min<std::size_t>(buffers.size(), IOV_MAX));
    for (std::string_view piece : buffers) {
      if (piece.empty()) continue;
      if (vectors.size() == IOV_MAX) break;
      vectors.push_back({const_cast<char*>(piece.data()), piece.size()});
    }
    ssize_t sent = send_now(vectors.data(), vectors.size());
    if (sent < 0 || static_cast<std::size_t>(sent) == total) return;
    skip = static_cast<std::size_t>(sent);
  }
  for (std::string_view piece : buffers) {
    if (skip >= piece.size()) {
      skip -= piece.size();
      continue;
    }
    buffer_.append(piece.substr(skip));
    skip = 0;
  }
  after_buffer_grew();
}

void SelectorSocketTransport::after_buffer_grew() {
  update_interest();
  maybe_pause_protocol();
}

void SelectorSocketTransport::write_eof() {
  if (closing_ || eof_requested_) return;
  eof_requested_ = true;
  // During a sendfile the EOF follows the file (finish_sendfile sends it).
  if (buffer_.empty() && !sendfile_) {
    ::shutdown(fd_, SHUT_WR);
    eof_sent_ = true;
  }
}

// ---- Flow control --------------------------------------------------------------

void SelectorSocketTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                                      std::optional<std::size_t> low) {
  flow_.set_limits(high, low);
  maybe_pause_protocol();
}

void SelectorSocketTransport::maybe_pause_protocol() {
  if (!flow_.should_pause(buffer_.size()) || !protocol_) return;
  try {
    protocol_->pause_writing();
  } catch (...) {
    report_current_exception("protocol.pause_writing() failed");
  }
}

void SelectorSocketTransport::maybe_resume_protocol() {
  if (!flow_.should_resume(buffer_.size()) || !protocol_) return;
  try {
    protocol_->resume_writing();
  } catch (...) {
    report_current_exception("protocol.resume_writing() failed");
  }
}

// ---- Reading control -------------------------------------------------------------

void SelectorSocketTransport::pause_reading() {
  if (closing_ || reading_paused_) return;
  reading_paused_ = true;
  update_interest();
}

void SelectorSocketTransport::resume_reading() {
  if (closing_ || !reading_paused_) return;
  reading_paused_ = false;
  update_interest();
}

bool SelectorSocketTransport::watch_as_needed() {
  std::uint32_t wanted = 0;
  if (!lost_) {
    if (!reading_paused_ && !closing_ && !eof_received_) wanted |= kReadable;
    if (!buffer_.empty() || sendfile_) wanted |= kWritable;
  }
  if (wanted == interest_) return false;
  backend_.set_interest(fd_, this, wanted);
  interest_ = wanted;
  return true;
}

void SelectorSocketTransport::update_interest() noexcept {
  try {
    watch_as_needed();
  } catch (const std::exception&) {
    // The kernel refused to change the registration (ENOMEM, ENOSPC): this
    // connection cannot go on, the others can. Removing a registration never
    // fails, so the close below does not come back here.
    report_current_exception("Fatal error: cannot watch the socket");
    std::error_code error = std::make_error_code(std::errc::not_enough_memory);
    try {
      throw;
    } catch (const std::system_error& e) {
      error = e.code();
    } catch (...) {
    }
    force_close(error);
  }
}

// ---- Closing -----------------------------------------------------------------------

void SelectorSocketTransport::close() {
  if (closing_) return;
  closing_ = true;
  // As asyncio, closing ends a sendfile in progress; its caller learns how far it got.
  if (sendfile_) finish_sendfile({0, errno_code(ECONNABORTED), false, true});
  update_interest();  // reading stops now; writing goes on until the buffer is empty
  if (buffer_.empty()) schedule_connection_lost({});
}

void SelectorSocketTransport::abort() { force_close({}); }

void SelectorSocketTransport::force_close(std::error_code error) {
  if (lost_) return;
  buffer_.clear();
  closing_ = true;
  if (sendfile_) finish_sendfile({0, error ? error : errno_code(ECONNABORTED), false, true});
  schedule_connection_lost(error);
}

void SelectorSocketTransport::schedule_connection_lost(std::error_code error) {
  lost_ = true;
  update_interest();  // leaves the poller now: no further event reaches this transport
  // A fresh stack: connection_lost never runs inside the close()/abort() call or
  // the event handler that caused it. The captured shared_ptr keeps the object
  // alive until that call has returned, whatever the protocol drops meanwhile.
  loop_.call_soon([self = shared(), error] {
    static_cast<SelectorSocketTransport&>(*self).call_connection_lost(error);
  });
}

void SelectorSocketTransport::call_connection_lost(std::error_code error) {
  if (released_) return;
  if (protocol_) {
    try {
      protocol_->connection_lost(error);
    } catch (...) {
      report_current_exception("Exception in protocol.connection_lost()");
    }
  }
  release();
}

void SelectorSocketTransport::release() {
  if (released_) return;
  released_ = true;
  interest_ = 0;
  backend_.close_socket(std::exchange(fd_, -1));
  data_protocol_ = nullptr;
  buffered_protocol_ = nullptr;
  // Dropping the protocol ends the transport/protocol cycle a protocol may have
  // made by keeping transport.shared(); the server learns one client is gone.
  std::shared_ptr<StreamProtocol> protocol = std::move(protocol_);
  std::shared_ptr<Server> server = std::move(server_);
  if (server) ServerAccess::detach(*server, this);
  // Last: the registry's reference may be the one keeping this object alive;
  // callers hold their own shared_ptr across this call.
  LoopAccess::internals(loop_).registry.transports.erase(static_cast<LoopMember*>(this));
}

void SelectorSocketTransport::shutdown_with_loop() noexcept {
  if (released_) return;
  bool tell_protocol = reading_started_;
  buffer_.clear();
  // The loop is going: a sendfile's Future stays pending, as every operation's does.
  sendfile_.reset();
  closing_ = true;
  lost_ = true;
  if (tell_protocol && protocol_) {
    try {
      protocol_->connection_lost(errno_code(ECONNABORTED));
    } catch (...) {
      // The loop is closing: there is no handler left to tell.
    }
  }
  release();
}

// ---- Errors --------------------------------------------------------------------------

ExceptionContext SelectorSocketTransport::context(const char* message) const {
  ExceptionContext details;
  details.message = message;
  details.transport = const_cast<SelectorSocketTransport*>(this);
  details.protocol = protocol_.get();
  details.server = server_.get();
  return details;
}

void SelectorSocketTransport::report_current_exception(const char* message) noexcept {
  ExceptionContext details = context(message);
  details.exception = std::current_exception();
  loop_.call_exception_handler(details);
}

void SelectorSocketTransport::protocol_failed(const char* message) {
  report_current_exception(message);
  force_close(make_error_code(Error::kCallbackRaised));
}

void SelectorSocketTransport::socket_failed(std::error_code error, const char* message) {
  // As asyncio: an OS error ends this connection and reaches the protocol as
  // connection_lost(error); it is not a bug, so the exception handler is not told.
  (void)message;
  force_close(error);
}

}  // namespace tulip::detail
