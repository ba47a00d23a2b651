#include "selector_socket_transport.hpp"

#include <limits.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <vector>

#include "pipe_ops.hpp"
#include "server_access.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
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

std::shared_ptr<Transport> EpollBackend::start_pipe_transport(PipeEnd pipe,
                                                              InlineFunction<void()> on_made) {
  claim(pipe.fd);
  auto transport = std::make_shared<SelectorSocketTransport>(*this, std::move(pipe));
  transport->start(std::move(on_made));
  return transport;
}

SelectorSocketTransport::SelectorSocketTransport(EpollBackend& backend, StreamSocket socket)
    : StreamTransportBase(backend.loop()),
      backend_(backend),
      fd_(socket.fd),
      kind_(Kind::kSocket),
      server_(socket.server.get()),
      peername_(socket.peer.empty() ? SocketAddress::peer_of(socket.fd) : std::move(socket.peer)) {
  set_protocol(std::move(socket.protocol));
}

SelectorSocketTransport::SelectorSocketTransport(EpollBackend& backend, PipeEnd pipe)
    : StreamTransportBase(backend.loop()),
      backend_(backend),
      fd_(pipe.fd),
      kind_(pipe.direction == PipeEnd::Direction::kRead ? Kind::kReadPipe : Kind::kWritePipe),
      watch_hang_up_(pipe.direction == PipeEnd::Direction::kWrite && pipe.watch_hang_up) {
  set_protocol(std::move(pipe.protocol));
}

SelectorSocketTransport::~SelectorSocketTransport() {
  // Normally release() ran long ago; this only matters for a transport whose
  // start() failed before it could release.
  if (!released_) backend_.close_socket(fd_);
}

void SelectorSocketTransport::start(Callback on_made) {
  // Watch for reads now (on_io_event ignores them until connection_made has
  // run): a connector hands its registration over here, so that one
  // EPOLL_CTL_MOD replaces a DEL and an ADD. This is the step the kernel may
  // refuse (ENOMEM, ENOSPC; EPERM for a descriptor epoll cannot watch): then
  // nothing else has been registered yet.
  try {
    watch_as_needed();
  } catch (...) {
    released_ = true;
    lost_ = closing_ = true;
    backend_.close_socket(std::exchange(fd_, -1));
    throw;
  }
  begin(std::move(on_made));
  if (server_) ServerAccess::attach(*server_, this);
}

// ---- Extra info ------------------------------------------------------------------

std::any SelectorSocketTransport::get_extra_info(std::string_view name) const {
  if (kind_ != Kind::kSocket) {
    // asyncio's pipe transports give the pipe; here, its descriptor.
    if (name == "pipe") return std::any(fd_);
    return {};
  }
  if (name == "peername") return peername_.empty() ? std::any{} : std::any(peername_);
  if (name == "sockname") {
    const SocketAddress& local = local_address();
    return local.empty() ? std::any{} : std::any(local);
  }
  if (name == "socket") return std::any(fd_);
  if (name == "peercred" && fd_ >= 0 && local_address().family() == AF_UNIX) {
    // Asked of the kernel when wanted: most connections never need it.
    ucred credentials{};
    socklen_t length = sizeof(credentials);
    if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return {};
    return std::any(PeerCredentials{credentials.pid, credentials.uid, credentials.gid});
  }
  return {};
}

const SocketAddress& SelectorSocketTransport::local_address() const {
  if (!sockname_) {
    // Once the socket is closed there is nothing to ask: an empty address
    // (keep_extra_info_after_close fetched it if anyone could still ask).
    sockname_ =
        std::make_unique<SocketAddress>(fd_ >= 0 ? SocketAddress::local_of(fd_) : SocketAddress());
  }
  return *sockname_;
}

void SelectorSocketTransport::keep_extra_info_after_close() noexcept {
  if (kind_ != Kind::kSocket || sockname_) return;
  try {
    (void)local_address();
  } catch (...) {
    // Out of memory: the transport closes without its local address, which
    // get_extra_info then reports as unknown.
  }
}

// ---- Events ------------------------------------------------------------------

// The read path is written out here, in one function, with the checks in the
// order the common case passes them: an echo round trip's read costs one
// call from the dispatcher, the recv() and the protocol's data_received.
void SelectorSocketTransport::on_io_event(std::uint32_t events) {
  if (events & kReadable) {
    if (kind_ == Kind::kWritePipe) [[unlikely]] {
      // A write end is watched for reading only to see its reader go: the
      // kernel reports that as an error or hang-up on the descriptor.
      on_hang_up();
      return;
    }
    // Bytes that arrive before connection_made wait for it (level-triggered).
    if (read_gate_open()) {
      if (buffered_protocol_ != nullptr) {
        read_into_buffered_protocol();
      } else {
        read_into_protocol();
      }
    }
  }
  // The read handler may have closed or aborted the transport.
  if ((events & kWritable) && !lost_) on_writable();
}

void SelectorSocketTransport::on_socket_readable(IoWatcher& watcher, char* buffer) {
  auto& self = static_cast<SelectorSocketTransport&>(watcher);
  // Bytes that arrive before connection_made wait for it (level-triggered).
  if (!self.read_gate_open()) return;
  // One test for the protocol's kind: a Protocol is the common case.
  Protocol* protocol = self.data_protocol_;
  if (protocol == nullptr) [[unlikely]] {
    self.read_into_buffered_protocol();
    return;
  }
  // Not receive(): an EINTR is left to the next readiness report (epoll is
  // level-triggered), which keeps the retry loop off the hot path.
  ssize_t n = ::recv(self.fd_, buffer, EpollBackend::kReadBufferSize, 0);
  if (n <= 0) [[unlikely]] {
    self.read_ended(n == 0 ? 0 : -errno);
    return;
  }
  try {
    protocol->data_received(std::string_view(buffer, static_cast<std::size_t>(n)));
  } catch (...) {
    self.protocol_failed("Fatal error: protocol.data_received() call failed.");
  }
}

ssize_t SelectorSocketTransport::read_some(void* data, std::size_t size) noexcept {
  if (kind_ == Kind::kSocket) [[likely]] {
    // Not receive(): an EINTR is left to the next readiness report (epoll is
    // level-triggered), which keeps the retry loop off the hot path.
    ssize_t n = ::recv(fd_, data, size, 0);
    return n >= 0 ? n : -errno;
  }
  return read_from_pipe(fd_, data, size);
}

[[gnu::always_inline]] inline void SelectorSocketTransport::read_into_protocol() {
  char* buffer = backend_.read_buffer();
  ssize_t n = read_some(buffer, EpollBackend::kReadBufferSize);
  if (n <= 0) [[unlikely]] {
    read_ended(n);
    return;
  }
  if (data_protocol_ == nullptr) return;
  try {
    data_protocol_->data_received(std::string_view(buffer, static_cast<std::size_t>(n)));
  } catch (...) {
    protocol_failed("Fatal error: protocol.data_received() call failed.");
  }
}

void SelectorSocketTransport::read_ended(ssize_t result) {
  if (result == 0) {
    on_eof();
  } else {
    read_failed(static_cast<int>(-result));
  }
}

void SelectorSocketTransport::read_into_buffered_protocol() {
  std::span<std::byte> buffer = buffer_for_next_read(EpollBackend::kReadBufferSize);
  if (buffer.empty()) return;
  ssize_t n = read_some(buffer.data(), buffer.size());
  if (n <= 0) {
    read_ended(n);
    return;
  }
  try {
    buffered_protocol_->buffer_updated(static_cast<std::size_t>(n));
  } catch (...) {
    protocol_failed("Fatal error: protocol.buffer_updated() call failed.");
  }
}

void SelectorSocketTransport::read_failed(int error) {
  // EINTR: the next readiness report tries again.
  if (!would_block(error) && error != EINTR) socket_failed(errno_code(error));
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
  // A read pipe has nothing left to do once its writer has finished: it
  // closes whatever eof_received answered (asyncio's _UnixReadPipeTransport).
  if (!keep_open || kind_ == Kind::kReadPipe) close();
}

void SelectorSocketTransport::on_hang_up() {
  // asyncio's _UnixWritePipeTransport._read_ready: bytes still buffered can
  // never be delivered now, which is a broken pipe; else a clean end.
  force_close(buffer_.empty() ? std::error_code() : errno_code(EPIPE));
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
    send_eof();
  }
}

// ---- Writing -----------------------------------------------------------------

bool SelectorSocketTransport::refuse_pipe_write(std::size_t bytes) {
  if (kind_ == Kind::kReadPipe && bytes != 0) {
    throw RuntimeError("write() on a read pipe transport: it has no writing half");
  }
  // As asyncio: bytes written now would land in the middle of the file.
  if (sendfile_ && bytes != 0 && !eof_requested_) {
    throw RuntimeError("unable to write; sendfile is in progress");
  }
  return refuse_write(bytes);
}

ssize_t SelectorSocketTransport::send_now(const iovec* buffers, std::size_t count) {
  ssize_t n = kind_ == Kind::kSocket ? send_buffers(fd_, buffers, count)
                                     : write_to_pipe(fd_, buffers, count);
  if (n >= 0) return n;
  if (would_block(static_cast<int>(-n))) return 0;
  socket_failed(errno_code(static_cast<int>(-n)));
  return -1;
}

void SelectorSocketTransport::write(std::string_view data) {
  // The echo path: an open socket with nothing queued, and the kernel takes
  // every byte. One send() and nothing else, so that this call keeps few
  // registers and no frame; everything else is out of line.
  if (direct_send_possible(data.size())) [[likely]] {
    ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (static_cast<std::size_t>(sent) == data.size()) [[likely]]
      return;
    finish_direct_write(data, sent);
    return;
  }
  write_queued(data);
}

void SelectorSocketTransport::finish_direct_write(std::string_view data, ssize_t sent) {
  // First, before anything else can change errno.
  int error = sent < 0 ? errno : 0;
  if (sent < 0) {
    if (error == EINTR) {
      write_queued(data);  // send_now retries
      return;
    }
    if (!would_block(error)) {
      socket_failed(errno_code(error));
      return;
    }
    sent = 0;
  }
  data.remove_prefix(static_cast<std::size_t>(sent));
  buffer_.append(data);
  after_buffer_grew();
}

void SelectorSocketTransport::write_queued(std::string_view data) {
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
  if (kind_ == Kind::kReadPipe) {
    throw RuntimeError("write_eof() on a read pipe transport: it has no writing half");
  }
  // A write pipe's reader sees EOF when the pipe closes: there is no other
  // half to keep open (asyncio's _UnixWritePipeTransport.write_eof).
  if (kind_ == Kind::kWritePipe) {
    close();
    return;
  }
  if (closing_ || eof_requested_) return;
  eof_requested_ = true;
  // During a sendfile the EOF follows the file (finish_sendfile sends it).
  if (buffer_.empty() && !sendfile_) send_eof();
}

void SelectorSocketTransport::send_eof() {
  ::shutdown(fd_, SHUT_WR);
  eof_sent_ = true;
}

// ---- Watching the descriptor ------------------------------------------------------

bool SelectorSocketTransport::watch_as_needed() {
  std::uint32_t wanted = 0;
  if (!lost_) {
    if (kind_ == Kind::kWritePipe) {
      // Not for bytes (there are none) but for the reader going away.
      if (watch_hang_up_) wanted |= kReadable;
    } else if (!reading_paused_ && !closing_ && !eof_received_) {
      wanted |= kReadable;
    }
    if (!buffer_.empty() || sendfile_) wanted |= kWritable;
  }
  if (wanted == interest_) return false;
  // A socket that watches for reads only is read without on_io_event.
  auto route = wanted == kReadable && kind_ == Kind::kSocket ? EpollBackend::Route::kSocketReads
                                                             : EpollBackend::Route::kWatcher;
  backend_.set_interest(fd_, this, wanted, route);
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
    report_current_exception("Fatal error: cannot watch the descriptor");
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

// ---- Closing and errors --------------------------------------------------------------

void SelectorSocketTransport::on_closing(std::error_code reason) {
  if (sendfile_) finish_sendfile({0, reason, false, true});
}

void SelectorSocketTransport::shutdown_with_loop() noexcept {
  // The loop is going: a sendfile's Future stays pending, as every operation's does.
  sendfile_.reset();
  StreamTransportBase::shutdown_with_loop();
}

void SelectorSocketTransport::release_resources() noexcept {
  interest_ = 0;
  backend_.close_socket(std::exchange(fd_, -1));
  // The server learns that one client is gone (a closed server may go with it).
  if (Server* server = std::exchange(server_, nullptr)) ServerAccess::detach(*server, this);
}

std::string SelectorSocketTransport::describe_endpoint() const {
  switch (kind_) {
    case Kind::kSocket:
      return "peer " + peername_.to_string();
    case Kind::kReadPipe:
      return "read pipe";
    case Kind::kWritePipe:
      return "write pipe";
  }
  return {};
}

void SelectorSocketTransport::socket_failed(std::error_code error) {
  // As asyncio: an OS error ends this connection and reaches the protocol as
  // connection_lost(error); it is not a bug, so the exception handler is not told.
  force_close(error);
}

}  // namespace tulip::detail
