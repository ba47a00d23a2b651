// StreamTransportBase: the life of a stream transport, whatever the backend.
// Not API.
//
// What every stream transport (a socket, a read or write pipe; readiness- or
// completion-driven) shares, written once: the protocol it owns and how it
// is replaced, the write buffer and asyncio's flow-control marks, closing,
// aborting, the one connection_lost on a fresh stack, leaving the loop's
// registry, and reporting what a protocol callback throws.
//
// State machine (asyncio's _SelectorTransport):
//
//   open --close()--> closing (reading stopped, buffer draining)
//        --buffer empty--> lost (connection_lost scheduled)
//   open/closing --abort() or fatal error--> lost (buffer dropped)
//   lost --connection_lost returned--> released (descriptor closed, protocol
//        and registry entry dropped; the object dies with its last shared_ptr)
//
// A backend's transport derives from this and supplies the I/O: how the
// descriptor is watched or read from (interest_changed: the state changed,
// bring the I/O in line) and how it is let go (release_resources). Every
// event handler of the backend re-checks the state after each protocol
// callback, since the callback may have closed or aborted the transport.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "flow_control.hpp"
#include "io_backend.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/protocol.hpp"
#include "tulip/transport.hpp"
#include "write_buffer.hpp"

namespace tulip::detail {

// A stream transport's state flags. A base class of StreamTransportBase rather
// than a member so that every transport names them as before; one struct so
// that the four the read path tests share one aligned word, which
// read_gate_open() tests with one load and one compare instead of a load and a
// branch per flag on every readable event.
struct alignas(4) StreamStateFlags {
  bool reading_started_ = false;  // connection_made has run
  bool reading_paused_ = false;
  bool eof_received_ = false;
  bool closing_ = false;  // close(), abort() or loss
  // Not part of the read gate's word.
  bool lost_ = false;           // connection_lost scheduled (or done); implies closing_
  bool eof_requested_ = false;  // write_eof() called
  bool released_ = false;

  /// Reading started, not paused, no EOF seen, not closing.
  bool read_gate_open() const noexcept { return gate_word(*this) == gate_word(open_gate()); }

 private:
  static constexpr StreamStateFlags open_gate() noexcept {
    StreamStateFlags flags;
    flags.reading_started_ = true;
    return flags;
  }
  // The first four flags' bytes as one word (memcpy: the compiler makes it one load).
  static std::uint32_t gate_word(const StreamStateFlags& flags) noexcept {
    std::uint32_t word;
    std::memcpy(&word, &flags, sizeof word);
    return word;
  }
};

class StreamTransportBase : public Transport, public LoopMember, protected StreamStateFlags {
 public:
  // BaseTransport
  void close() override;
  bool is_closing() const noexcept override { return closing_; }
  void set_protocol(std::shared_ptr<StreamProtocol> protocol) override;
  StreamProtocol* get_protocol() const noexcept override { return protocol_.get(); }
  EventLoop& get_loop() const noexcept override { return loop_; }

  // ReadTransport
  void pause_reading() override;
  void resume_reading() override;
  bool is_reading() const noexcept override { return !closing_ && !reading_paused_; }

  // WriteTransport (the writing itself is the backend's)
  void abort() override { force_close({}); }
  void set_write_buffer_limits(std::optional<std::size_t> high,
                               std::optional<std::size_t> low) override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override {
    return flow_.limits();
  }
  std::size_t get_write_buffer_size() const noexcept override { return buffer_.size(); }

  /// The server that accepted this connection; null for any other.
  Server* accepted_by() const noexcept { return accepting_server(); }

  /// The loop is closing with this transport still open: tell the protocol
  /// (connection_lost with ECONNABORTED) if connection_made has run, and
  /// release everything now.
  void shutdown_with_loop() noexcept override;

 protected:
  explicit StreamTransportBase(EventLoop& loop) : loop_(loop) {}

  // ---- What the backend supplies ---------------------------------------------------

  /// The state changed (reading paused or resumed, closing, lost, the buffer
  /// grew or emptied): bring the I/O in line. Must not throw: a refusal of the
  /// kernel ends this connection (force_close).
  virtual void interest_changed() noexcept = 0;
  /// Stop all I/O and let the descriptor go; called once, from release().
  virtual void release_resources() noexcept = 0;
  /// Who the transport talks to, for a log line ("peer ('127.0.0.1', 80)").
  virtual std::string describe_endpoint() const = 0;
  /// The server that accepted this connection, for exception contexts.
  virtual Server* accepting_server() const noexcept { return nullptr; }
  /// close() or a fatal end (abort, an error) has just begun (closing_ is
  /// set): end what runs besides the byte stream, such as a sendfile, with
  /// `reason` (ECONNABORTED for a close() or an abort()).
  virtual void on_closing(std::error_code reason) { (void)reason; }
  /// The descriptor is about to close while someone besides the loop still
  /// holds this transport (a shared_ptr): extra info that is read from the
  /// descriptor on demand must be read now, since get_extra_info answers it
  /// after close too (asyncio fills it when the transport is made). Not
  /// called when nobody could ask any more, which is the common case.
  virtual void keep_extra_info_after_close() noexcept {}

  // ---- For the backend -----------------------------------------------------------------

  /// Joins the loop's registry and schedules connection_made (never run
  /// inside this call); after it, reading starts (interest_changed: the
  /// protocol may have paused it meanwhile) and `on_made` runs. Call once,
  /// when the backend is ready to watch the descriptor.
  void begin(Callback on_made);

  /// A write that is not allowed now: a no-op for empty data, RuntimeError
  /// after write_eof(), a warning (once) after close. Returns false.
  bool refuse_write(std::size_t bytes);

  /// Calls pause_writing / resume_writing when the buffer crossed a mark.
  void maybe_pause_protocol();
  void maybe_resume_protocol();

  /// Tells the exception handler about the exception being handled, with this
  /// transport's context.
  void report_current_exception(const char* message) noexcept;
  /// A protocol callback threw: report it and close this connection only.
  void protocol_failed(const char* message);
  /// The buffer a BufferedProtocol's next read goes into, from its get_buffer:
  /// empty when reading stops here instead (get_buffer threw or gave an empty
  /// buffer, both reported and closing the connection, or it closed, paused or
  /// replaced the protocol).
  std::span<std::byte> buffer_for_next_read(std::size_t size_hint);
  /// Drops the buffer, stops all I/O, schedules connection_lost(error).
  void force_close(std::error_code error);
  /// Marks the transport lost and schedules connection_lost(error) on a fresh stack.
  void schedule_connection_lost(std::error_code error);
  ExceptionContext context(const char* message) const;

  EventLoop& loop_;
  std::shared_ptr<StreamProtocol> protocol_;
  Protocol* data_protocol_ = nullptr;              // protocol_ seen as a Protocol, if it is one
  BufferedProtocol* buffered_protocol_ = nullptr;  // or as a BufferedProtocol

  WriteBuffer buffer_;
  WriteFlowControl flow_;

 private:
  void call_connection_lost(std::error_code error);
  // `loop_references`: how many shared_ptrs to this transport the loop's own
  // machinery holds in the caller (the registry's, the scheduled call's);
  // any beyond those belong to someone who may still ask for extra info.
  void release(long loop_references);

  std::size_t dropped_writes_ = 0;
};

}  // namespace tulip::detail
