// LoopInternals::shutdown: what EventLoop::close() releases, in order.
#include "loop_internals.hpp"

#include <vector>

#include "connector.hpp"
#include "selector/selector_socket_transport.hpp"
#include "tulip/server.hpp"

namespace tulip::detail {

void LoopInternals::shutdown() {
  std::vector<std::shared_ptr<Server>> open_servers(servers.begin(), servers.end());
  for (auto& server : open_servers) server->close();
  servers.clear();
  std::vector<std::shared_ptr<Connector>> attempts;
  for (auto& [raw, attempt] : connectors) attempts.push_back(attempt);
  for (auto& attempt : attempts) attempt->abandon();
  connectors.clear();
  std::vector<std::shared_ptr<BaseTransport>> live;
  for (auto& [raw, transport] : transports) live.push_back(transport);
  for (auto& transport : live) {
    static_cast<SelectorSocketTransport&>(*transport).shutdown_with_loop();
  }
  transports.clear();
  resolver.shutdown();
  while (!signal_handlers.empty()) uninstall_signal_handler(loop, signal_handlers.begin()->first);
  for (auto& [fd, watcher] : fd_watchers) backend.set_interest(fd, nullptr, 0);
  fd_watchers.clear();
}

}  // namespace tulip::detail
