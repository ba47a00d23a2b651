// Test support: a DatagramProtocol that records every callback and checks the
// call order (connection_made, then datagrams and errors, then connection_lost).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "tulip/tulip.hpp"

namespace tulip::testing {

class RecordingDatagramProtocol : public DatagramProtocol {
 public:
  std::function<void(DatagramTransport&)> on_made;
  std::function<void(std::string_view, const SocketAddress&)> on_datagram;
  std::function<void(std::error_code)> on_error;

  void connection_made(DatagramTransport& t) override {
    EXPECT_EQ(made, 0) << "connection_made twice";
    ++made;
    transport = &t;
    if (on_made) on_made(t);
  }
  void datagram_received(std::string_view data, const SocketAddress& from) override {
    EXPECT_EQ(made, 1) << "datagram before connection_made";
    EXPECT_EQ(lost, 0) << "datagram after connection_lost";
    datagrams.emplace_back(std::string(data), from);
    if (on_datagram) on_datagram(data, from);
  }
  void error_received(std::error_code error) override {
    EXPECT_EQ(lost, 0) << "error after connection_lost";
    errors.push_back(error);
    if (on_error) on_error(error);
  }
  void connection_lost(std::error_code error) override {
    EXPECT_EQ(lost, 0) << "connection_lost twice";
    ++lost;
    lost_error = error;
    transport = nullptr;
  }
  void pause_writing() override { ++pauses; }
  void resume_writing() override { ++resumes; }

  DatagramTransport* transport = nullptr;
  int made = 0;
  int lost = 0;
  int pauses = 0;
  int resumes = 0;
  std::error_code lost_error;
  std::vector<std::pair<std::string, SocketAddress>> datagrams;
  std::vector<std::error_code> errors;
};

/// Echoes each datagram to its sender.
class DatagramEcho final : public DatagramProtocol {
 public:
  void connection_made(DatagramTransport& t) override { transport_ = &t; }
  void datagram_received(std::string_view data, const SocketAddress& from) override {
    transport_->sendto(data, from);
  }

 private:
  DatagramTransport* transport_ = nullptr;
};

}  // namespace tulip::testing
