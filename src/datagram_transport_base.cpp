#include "datagram_transport_base.hpp"

#include <cerrno>
#include <stdexcept>
#include <string>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"

namespace tulip::detail {

DatagramTransportBase::DatagramTransportBase(EventLoop& loop, DatagramSocket& socket)
    : loop_(loop),
      fd_(socket.fd),
      remote_(std::move(socket.remote)),
      sockname_(SocketAddress::local_of(socket.fd)),
      on_release_(std::move(socket.on_release)) {
  set_protocol(std::move(socket.protocol));
}

void DatagramTransportBase::begin(Callback on_made) {
  LoopAccess::internals(loop_).registry.transports.emplace(
      static_cast<LoopMember*>(this),
      std::shared_ptr<LoopMember>(shared(), static_cast<LoopMember*>(this)));
  // connection_made from the ready queue, never inside create_datagram_endpoint;
  // datagrams that arrive earlier wait in the kernel until reading starts.
  loop_.call_soon([self = shared(), on_made = std::move(on_made)]() mutable {
    auto& transport = static_cast<DatagramTransportBase&>(*self);
    if (transport.protocol_ && !transport.released_) {
      try {
        transport.protocol_->connection_made(transport);
      } catch (...) {
        transport.protocol_failed("Exception in protocol.connection_made()");
      }
      transport.reading_started_ = true;
      transport.interest_changed();
    }
    if (on_made) on_made();
  });
}

void DatagramTransportBase::set_protocol(std::shared_ptr<DatagramProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("set_protocol() needs a protocol, not null");
  if (protocol_ && !released_) {
    // The old protocol may be the caller, inside one of its callbacks: it is
    // released on the next iteration, once that call has returned.
    loop_.call_soon([retired = std::move(protocol_)] {});
  }
  protocol_ = std::move(protocol);
}

std::any DatagramTransportBase::get_extra_info(std::string_view name) const {
  if (name == "peername") return remote_ ? std::any(*remote_) : std::any{};
  if (name == "sockname") {
    if (fd_ >= 0) sockname_ = SocketAddress::local_of(fd_);
    return sockname_.empty() ? std::any{} : std::any(sockname_);
  }
  if (name == "socket") return std::any(fd_);
  return {};
}

// ---- Sending -------------------------------------------------------------------------

void DatagramTransportBase::throw_invalid_address() const {
  throw std::invalid_argument("Invalid address: must be None or " + remote_->to_string());
}

void DatagramTransportBase::throw_no_address() {
  throw std::invalid_argument("sendto() needs an address: the endpoint is not connected");
}

void DatagramTransportBase::drop_after_close(std::size_t size) {
  // asyncio counts silently and warns from the fifth send; one warning at the
  // first dropped datagram tells the user sooner and does not spam.
  if (dropped_writes_++ == 0) {
    log(LogLevel::kWarning,
        "sendto() after the transport was closed: " + std::to_string(size) + " bytes dropped");
  }
}

void DatagramTransportBase::report_later(std::error_code error) {
  loop_.call_soon([self = shared(), error] {
    auto& transport = static_cast<DatagramTransportBase&>(*self);
    if (!transport.lost_) transport.report_now(error);
  });
}

void DatagramTransportBase::report_now(std::error_code error) {
  if (!protocol_) return;
  try {
    protocol_->error_received(error);
  } catch (...) {
    protocol_failed("Fatal error: protocol.error_received() call failed.");
  }
}

// ---- Flow control --------------------------------------------------------------------

void DatagramTransportBase::set_write_buffer_limits(std::optional<std::size_t> high,
                                                    std::optional<std::size_t> low) {
  flow_.set_limits(high, low);
  maybe_pause_protocol();
}

void DatagramTransportBase::maybe_pause_protocol() {
  if (!flow_.should_pause(buffered_bytes_) || !protocol_) return;
  try {
    protocol_->pause_writing();
  } catch (...) {
    ExceptionContext details = context("protocol.pause_writing() failed");
    details.exception = std::current_exception();
    loop_.call_exception_handler(details);
  }
}

void DatagramTransportBase::maybe_resume_protocol() {
  if (!flow_.should_resume(buffered_bytes_) || !protocol_) return;
  try {
    protocol_->resume_writing();
  } catch (...) {
    ExceptionContext details = context("protocol.resume_writing() failed");
    details.exception = std::current_exception();
    loop_.call_exception_handler(details);
  }
}

// ---- Closing -------------------------------------------------------------------------

void DatagramTransportBase::close() {
  if (closing_) return;
  // What datagram_received sent before closing goes before the end.
  send_corked();
  closing_ = true;
  interest_changed();  // reading stops now; queued datagrams are still sent
  if (buffered_bytes_ == 0) schedule_connection_lost({});
}

void DatagramTransportBase::force_close(std::error_code error) {
  if (lost_) return;
  // Sent before the abort (or the protocol's failure), as far as the caller
  // knows: they go out; only what the kernel had not taken yet is dropped.
  send_corked();
  buffer_.clear();
  buffered_bytes_ = 0;
  closing_ = true;
  schedule_connection_lost(error);
}

void DatagramTransportBase::schedule_connection_lost(std::error_code error) {
  lost_ = true;
  interest_changed();  // no further datagram reaches this transport
  // A fresh stack: connection_lost never runs inside the close()/abort() call or
  // the handler that caused it. The captured shared_ptr keeps this object alive
  // until the call has returned, whatever the protocol drops meanwhile.
  loop_.call_soon([self = shared(), error] {
    static_cast<DatagramTransportBase&>(*self).call_connection_lost(error);
  });
}

void DatagramTransportBase::call_connection_lost(std::error_code error) {
  if (released_) return;
  if (protocol_) {
    try {
      protocol_->connection_lost(error);
    } catch (...) {
      ExceptionContext details = context("Exception in protocol.connection_lost()");
      details.exception = std::current_exception();
      loop_.call_exception_handler(details);
    }
  }
  release();
}

void DatagramTransportBase::release() {
  if (released_) return;
  released_ = true;
  closing_ = lost_ = true;
  release_resources();
  // Dropping the protocol ends a cycle it may have made with transport.shared().
  std::shared_ptr<DatagramProtocol> protocol = std::move(protocol_);
  // Last: the registry's reference may be the one keeping this object alive;
  // callers hold their own shared_ptr across this call.
  LoopAccess::internals(loop_).registry.transports.erase(static_cast<LoopMember*>(this));
}

void DatagramTransportBase::run_on_release() noexcept {
  if (!on_release_) return;
  Callback release = std::move(on_release_);
  on_release_.reset();
  release();
}

void DatagramTransportBase::shutdown_with_loop() noexcept {
  if (released_) return;
  bool tell_protocol = reading_started_;
  buffer_.clear();
  buffered_bytes_ = 0;
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

ExceptionContext DatagramTransportBase::context(const char* message) const {
  ExceptionContext details;
  details.message = message;
  details.transport = const_cast<DatagramTransportBase*>(this);
  details.protocol = protocol_.get();
  return details;
}

void DatagramTransportBase::protocol_failed(const char* message) {
  ExceptionContext details = context(message);
  details.exception = std::current_exception();
  loop_.call_exception_handler(details);
  force_close(make_error_code(Error::kCallbackRaised));
}

}  // namespace tulip::detail
