#include "stream_transport_base.hpp"

#include <cerrno>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <typeinfo>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"

namespace tulip::detail {

void StreamTransportBase::begin(Callback on_made) {
  LoopAccess::internals(loop_).registry.transports.emplace(
      static_cast<LoopMember*>(this),
      std::shared_ptr<LoopMember>(shared(), static_cast<LoopMember*>(this)));
  // connection_made runs from the ready queue, never inside the accept or
  // connect handler; reading starts only after it, as in asyncio.
  loop_.call_soon([self = shared()] {
    auto& transport = static_cast<StreamTransportBase&>(*self);
    if (transport.protocol_ && !transport.released_) {
      try {
        transport.protocol_->connection_made(transport);
      } catch (...) {
        transport.protocol_failed("Exception in protocol.connection_made()");
      }
      transport.reading_started_ = true;
      transport.interest_changed();
      // Bytes that arrived before connection_made are waiting: level-triggered
      // readiness reports them on the next poll.
    }
  });
  // Its own entry, right behind connection_made's, so that it runs next with
  // nothing in between (the ready queue is FIFO and both are in this
  // iteration's batch): one callable in the first would not fit a ready-queue
  // node's inline storage and would cost an allocation per connection.
  if (on_made) loop_.call_soon(std::move(on_made));
}

// ---- Protocol ---------------------------------------------------------------------

namespace {

struct ProtocolViews {
  Protocol* data = nullptr;
  BufferedProtocol* buffered = nullptr;
};

// `protocol` seen as a Protocol or a BufferedProtocol. A program makes its
// connections with one or a few protocol classes, so the answer for the last
// class seen is kept (per thread: loops on several threads each keep their
// own) and a new connection of that class costs a typeid compare instead of a
// dynamic_cast (about 170 instructions, a tenth of a client connection's own
// work). The key is the dynamic type and where this StreamProtocol sits in
// its object: a class with two StreamProtocol bases has a cast per base.
ProtocolViews protocol_kind(StreamProtocol* protocol) {
  struct Cached {
    const std::type_info* type = nullptr;
    std::ptrdiff_t base_offset = 0;  // the StreamProtocol within its complete object
    std::ptrdiff_t data_offset = 0;  // the Protocol from the StreamProtocol, if one
    std::ptrdiff_t buffered_offset = 0;
    bool is_data = false;
    bool is_buffered = false;
  };
  static thread_local Cached cached;
  auto* bytes = reinterpret_cast<char*>(protocol);
  const std::type_info* type = &typeid(*protocol);
  std::ptrdiff_t base_offset = bytes - static_cast<char*>(dynamic_cast<void*>(protocol));
  if (type != cached.type || base_offset != cached.base_offset) [[unlikely]] {
    // One cast for the usual Protocol (a Protocol is never also a BufferedProtocol).
    auto* data = dynamic_cast<Protocol*>(protocol);
    auto* buffered = data != nullptr ? nullptr : dynamic_cast<BufferedProtocol*>(protocol);
    cached = {type,
              base_offset,
              data != nullptr ? reinterpret_cast<char*>(data) - bytes : 0,
              buffered != nullptr ? reinterpret_cast<char*>(buffered) - bytes : 0,
              data != nullptr,
              buffered != nullptr};
    return {data, buffered};
  }
  return {cached.is_data ? reinterpret_cast<Protocol*>(bytes + cached.data_offset) : nullptr,
          cached.is_buffered ? reinterpret_cast<BufferedProtocol*>(bytes + cached.buffered_offset)
                             : nullptr};
}

}  // namespace

void StreamTransportBase::set_protocol(std::shared_ptr<StreamProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("set_protocol() needs a protocol, not null");
  // Resolved once here so that every read dispatches without a dynamic_cast.
  auto [data_protocol, buffered_protocol] = protocol_kind(protocol.get());
  if (data_protocol == nullptr && buffered_protocol == nullptr) {
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
  data_protocol_ = data_protocol;
  buffered_protocol_ = buffered_protocol;
}

// ---- Writing and flow control ------------------------------------------------------

bool StreamTransportBase::refuse_write(std::size_t bytes) {
  if (bytes == 0) return false;
  if (eof_requested_) throw RuntimeError("Cannot call write() after write_eof()");
  if (closing_ || lost_) {
    // asyncio counts silently and warns from the fifth write; one warning at the
    // first dropped write tells the user sooner and does not spam.
    if (dropped_writes_++ == 0) {
      log(LogLevel::kWarning, "write() after the transport was closed: " + std::to_string(bytes) +
                                  " bytes dropped (" + describe_endpoint() + ")");
    }
  }
  return false;
}

void StreamTransportBase::set_write_buffer_limits(std::optional<std::size_t> high,
                                                  std::optional<std::size_t> low) {
  flow_.set_limits(high, low);
  maybe_pause_protocol();
}

void StreamTransportBase::maybe_pause_protocol() {
  if (!flow_.should_pause(buffer_.size()) || !protocol_) return;
  try {
    protocol_->pause_writing();
  } catch (...) {
    report_current_exception("protocol.pause_writing() failed");
  }
}

void StreamTransportBase::maybe_resume_protocol() {
  if (!flow_.should_resume(buffer_.size()) || !protocol_) return;
  try {
    protocol_->resume_writing();
  } catch (...) {
    report_current_exception("protocol.resume_writing() failed");
  }
}

// ---- Reading control -----------------------------------------------------------------

void StreamTransportBase::pause_reading() {
  if (closing_ || reading_paused_) return;
  reading_paused_ = true;
  interest_changed();
}

void StreamTransportBase::resume_reading() {
  if (closing_ || !reading_paused_) return;
  reading_paused_ = false;
  interest_changed();
}

// ---- Closing -----------------------------------------------------------------------

void StreamTransportBase::close() {
  if (closing_) return;
  closing_ = true;
  on_closing(errno_code(ECONNABORTED));
  interest_changed();  // reading stops now; writing goes on until the buffer is empty
  if (buffer_.empty()) schedule_connection_lost({});
}

void StreamTransportBase::force_close(std::error_code error) {
  if (lost_) return;
  buffer_.clear();
  closing_ = true;
  on_closing(error ? error : errno_code(ECONNABORTED));
  schedule_connection_lost(error);
}

void StreamTransportBase::schedule_connection_lost(std::error_code error) {
  lost_ = true;
  interest_changed();  // leaves the poller now: no further event reaches this transport
  // A fresh stack: connection_lost never runs inside the close()/abort() call or
  // the event handler that caused it. The captured shared_ptr keeps the object
  // alive until that call has returned, whatever the protocol drops meanwhile.
  loop_.call_soon([self = shared(), error] {
    static_cast<StreamTransportBase&>(*self).call_connection_lost(error);
  });
}

void StreamTransportBase::call_connection_lost(std::error_code error) {
  if (released_) return;
  if (protocol_) {
    try {
      protocol_->connection_lost(error);
    } catch (...) {
      report_current_exception("Exception in protocol.connection_lost()");
    }
  }
  // The registry's reference and the one of the scheduled call running this.
  release(2);
}

void StreamTransportBase::release(long loop_references) {
  if (released_) return;
  released_ = true;
  if (weak_from_this().use_count() > loop_references) keep_extra_info_after_close();
  release_resources();
  data_protocol_ = nullptr;
  buffered_protocol_ = nullptr;
  // Dropping the protocol ends the transport/protocol cycle a protocol may have
  // made by keeping transport.shared().
  std::shared_ptr<StreamProtocol> protocol = std::move(protocol_);
  // Last: the registry's reference may be the one keeping this object alive;
  // callers hold their own shared_ptr across this call.
  LoopAccess::internals(loop_).registry.transports.erase(static_cast<LoopMember*>(this));
}

void StreamTransportBase::shutdown_with_loop() noexcept {
  if (released_) return;
  bool tell_protocol = reading_started_;
  buffer_.clear();
  closing_ = true;
  lost_ = true;
  if (tell_protocol && protocol_) {
    try {
      protocol_->connection_lost(errno_code(ECONNABORTED));
    } catch (...) {
      // The loop is closing: there is no handler left to tell.
    }
  }
  // The registry's reference, handed to the loop's shutdown calling this.
  release(1);
}

// ---- Errors --------------------------------------------------------------------------

ExceptionContext StreamTransportBase::context(const char* message) const {
  ExceptionContext details;
  details.message = message;
  details.transport = const_cast<StreamTransportBase*>(this);
  details.protocol = protocol_.get();
  details.server = accepting_server();
  return details;
}

void StreamTransportBase::report_current_exception(const char* message) noexcept {
  ExceptionContext details = context(message);
  details.exception = std::current_exception();
  loop_.call_exception_handler(details);
}

std::span<std::byte> StreamTransportBase::buffer_for_next_read(std::size_t size_hint) {
  BufferedProtocol* target = buffered_protocol_;
  std::span<std::byte> buffer;
  try {
    buffer = target->get_buffer(size_hint);
  } catch (...) {
    protocol_failed("Fatal error: protocol.get_buffer() call failed.");
    return {};
  }
  // get_buffer may have closed, aborted or paused the transport, or replaced
  // the protocol. Reading then stops here: receiving anyway would hand the
  // protocol bytes (or an EOF) after it gave the connection up or asked for no
  // more, or fill the buffer of a protocol that no longer receives. (A new
  // protocol gets the bytes at the next readiness.)
  if (closing_ || reading_paused_ || target != buffered_protocol_) return {};
  if (buffer.empty()) {
    loop_.call_exception_handler(context("Fatal error: get_buffer() returned an empty buffer"));
    force_close(make_error_code(Error::kEmptyBuffer));
  }
  return buffer;
}

void StreamTransportBase::protocol_failed(const char* message) {
  report_current_exception(message);
  force_close(make_error_code(Error::kCallbackRaised));
}

}  // namespace tulip::detail
