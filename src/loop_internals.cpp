// What EventLoop::close() releases, in order.
#include "loop_internals.hpp"

#include <vector>

#include "tulip/server.hpp"

namespace tulip::detail {

void LoopRegistry::shutdown() {
  std::vector<std::shared_ptr<Server>> open_servers(servers.begin(), servers.end());
  for (auto& server : open_servers) server->close();
  servers.clear();
  // Taken first: ending a member would unlist it from the list being walked.
  for (auto* registry : {&connectors, &transports}) {
    std::vector<std::shared_ptr<LoopMember>> members = registry->take_all();
    for (auto& member : members) member->shutdown_with_loop();
    registry->clear();
  }
}

void LoopInternals::shutdown() {
  registry.shutdown();
  executors.shutdown();
  uninstall_all_signal_handlers(loop);
  for (auto& [fd, watcher] : fd_watchers) backend.set_interest(fd, watcher.get(), 0);
  fd_watchers.clear();
}

}  // namespace tulip::detail
