// A user's protocol test against an installed tulip::testing: an echo protocol
// driven through MemoryTransport, no socket. Built by the consumer projects
// next to it (find_package: tulip::testing; pkg-config: tulip-testing).
//
// Exit status 0 when the echo and the clean close came as expected; 1 with a
// one-line reason otherwise.
#include <tulip/testing/memory_transport.hpp>
#include <tulip/tulip.hpp>

#include <cstdio>
#include <memory>
#include <string_view>

namespace {

class Echo : public tulip::Protocol {
 public:
  void connection_made(tulip::Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override { transport_->write(data); }

 private:
  tulip::Transport* transport_ = nullptr;
};

}  // namespace

int main() {
  tulip::EventLoop loop;
  auto connection = tulip::testing::MemoryTransport::connect(loop, std::make_shared<Echo>());
  connection.feed("in memory", 4);
  connection.feed_eof();
  tulip::testing::run_until_idle(loop);
  if (connection.written() != "in memory" || !connection.peer_eof_seen() ||
      !connection.connection_lost()) {
    std::fprintf(stderr, "consumer: MemoryTransport echoed '%s'\n", connection.written().c_str());
    return 1;
  }
  std::printf("consumer: MemoryTransport echoed %zu bytes\n", connection.written().size());
  return 0;
}
