// The soak's protocols: the long-lived client connection that sends a message
// when told and verifies its echo, and the in-process echo server. Loop
// thread only, like every protocol.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "tulip/protocol.hpp"
#include "tulip/transport.hpp"

namespace tulip::soak {

/// The byte at `offset` of connection `id`'s stream: differs between
/// connections and along the stream, so crossed or shifted bytes show.
inline char stream_byte(std::uint32_t id, std::uint64_t offset) {
  return static_cast<char>((offset * 31 + (offset >> 9) + id * 17) & 0xff);
}

/// The same bytes, `size` of them from `offset`.
inline std::string stream_bytes(std::uint32_t id, std::uint64_t offset, std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = stream_byte(id, offset + i);
  return data;
}

/// What the connections report to the run (the soak program).
class SoakEvents {
 public:
  virtual ~SoakEvents() = default;
  /// Counts an error and prints the first few.
  virtual void error(const std::string& message) = 0;
  /// `bytes` came back as they were sent.
  virtual void on_echoed(std::size_t bytes) = 0;
  /// A long-lived connection ended (`cause` empty: a clean close).
  virtual void on_lost(std::error_code cause) = 0;
};

/// One long-lived client connection: sends a message when told, verifies its
/// echo, reports to the run. `events` must outlive the connection.
class SoakClient final : public Protocol {
 public:
  SoakClient(SoakEvents& events, std::uint32_t id) : events_(events), id_(id) {}

  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override {
    if (corrupted_) return;
    if (received_ + data.size() > sent_) {
      corrupted_ = true;
      events_.error("connection " + std::to_string(id_) + " received more bytes than it sent");
      return;
    }
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (data[i] != stream_byte(id_, received_ + i)) {
        corrupted_ = true;
        events_.error("connection " + std::to_string(id_) + ": echoed byte " +
                      std::to_string(received_ + i) + " differs from the byte sent");
        return;
      }
    }
    received_ += data.size();
    events_.on_echoed(data.size());
  }
  void connection_lost(std::error_code error) override {
    transport_ = nullptr;
    events_.on_lost(error);
  }

  bool alive() const { return transport_ != nullptr; }
  bool busy() const { return received_ < sent_; }
  void send(std::size_t size) {
    std::string data = stream_bytes(id_, sent_, size);
    sent_ += size;
    ++messages_;
    transport_->write(std::move(data));
  }
  void close() {
    if (transport_ != nullptr) transport_->close();
  }
  std::uint64_t messages() const { return messages_; }

 private:
  SoakEvents& events_;
  std::uint32_t id_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t messages_ = 0;
  bool corrupted_ = false;
};

/// The in-process echo server's protocol: echoes everything, with backpressure.
class EchoServer final : public Protocol {
 public:
  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override { transport_->write(data); }
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }
  void connection_lost(std::error_code) override { transport_ = nullptr; }

 private:
  Transport* transport_ = nullptr;
};

}  // namespace tulip::soak
