// LoopRegistry: what a loop keeps alive and ends when it closes. Not API.
//
// The loop owns every live transport from start() until its connection_lost
// has returned, every connection attempt until it finishes, and every open
// server until it is closed. Users never have to keep these alive for them to
// work; closing the loop ends them all (in that order: servers stop accepting
// first, then attempts stop, then connections see connection_lost).
//
// Thread-safety: loop thread only.
#pragma once

#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "io_backend.hpp"

namespace tulip {
class Server;
}

namespace tulip::detail {

struct LoopRegistry {
  /// Ends everything registered; see the header comment for the order.
  void shutdown();

  std::unordered_set<std::shared_ptr<Server>> servers;
  std::unordered_map<LoopMember*, std::shared_ptr<LoopMember>> connectors;
  std::unordered_map<LoopMember*, std::shared_ptr<LoopMember>> transports;
};

}  // namespace tulip::detail
