// SslTransport: the application's view of a TLS connection (asyncio's
// _SSLProtocolTransport). Not API: the application sees a tulip::Transport.
//
// Every call goes to the connection's SslProtocol, which this object keeps
// alive: an application holding the transport after connection_lost holds a
// closed layer whose methods are safe no-ops.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <memory>
#include <utility>

#include "sendfile_support.hpp"
#include "ssl_protocol.hpp"
#include "tulip/transport.hpp"

namespace tulip::detail {

// loop.sendfile over TLS takes the buffered path (asyncio's
// _sendfile_compatible = FALLBACK): the file is read and written through
// this transport, whose protocol slot the sendfile's stand-in borrows.
class SslTransport final : public Transport, public BufferedSendfileTarget {
 public:
  explicit SslTransport(std::shared_ptr<SslProtocol> layer) : layer_(std::move(layer)) {}

  void close() override { layer_->close(); }
  bool is_closing() const noexcept override { return layer_->is_closing(); }
  std::any get_extra_info(std::string_view name) const override {
    return layer_->get_extra_info(name);
  }
  void set_protocol(std::shared_ptr<StreamProtocol> protocol) override {
    layer_->set_app_protocol(std::move(protocol));
  }
  StreamProtocol* get_protocol() const noexcept override { return layer_->app_protocol(); }
  EventLoop& get_loop() const noexcept override { return layer_->loop(); }

  void pause_reading() override { layer_->pause_reading(); }
  void resume_reading() override { layer_->resume_reading(); }
  bool is_reading() const noexcept override { return layer_->is_reading(); }

  // Encrypting reads the bytes once, at once: a moved string is no cheaper.
  void write(std::string_view data) override { layer_->write(data); }
  void write(std::string&& data) override { layer_->write(data); }
  void writelines(std::span<const std::string_view> buffers) override {
    layer_->writelines(buffers);
  }
  /// TLS has no half-close: throws RuntimeError (asyncio: NotImplementedError).
  void write_eof() override;
  bool can_write_eof() const noexcept override { return false; }
  void abort() override { layer_->abort(); }

  void set_write_buffer_limits(std::optional<std::size_t> high,
                               std::optional<std::size_t> low) override {
    layer_->set_write_buffer_limits(high, low);
  }
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override {
    return layer_->get_write_buffer_limits();
  }
  std::size_t get_write_buffer_size() const noexcept override {
    return layer_->get_write_buffer_size();
  }

  // BufferedSendfileTarget
  std::shared_ptr<StreamProtocol> owned_protocol() const noexcept override {
    return layer_->app_protocol_shared();
  }
  bool protocol_writing_paused() const noexcept override { return layer_->app_writing_paused(); }

 private:
  std::shared_ptr<SslProtocol> layer_;
};

}  // namespace tulip::detail
