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

#include <cstddef>
#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "io_backend.hpp"

namespace tulip {
class Server;
}

namespace tulip::detail {

/// The live members of one kind, as a list through the members themselves
/// (LoopMember's hooks): joining and leaving allocate nothing, and a member
/// costs its hooks (32 bytes) instead of a hash node and a bucket (about 56
/// bytes and a malloc per connection).
class LoopMemberList {
 public:
  LoopMemberList() = default;
  LoopMemberList(const LoopMemberList&) = delete;
  LoopMemberList& operator=(const LoopMemberList&) = delete;
  ~LoopMemberList() { clear(); }

  /// Lists `member` and keeps it alive through `owner` (an owning pointer to
  /// the same object) until erase(). A member already listed stays as it is.
  void emplace(LoopMember* member, std::shared_ptr<LoopMember> owner) {
    LoopMember::RegistryHooks& hooks = member->registry_hooks();
    if (hooks.owner) return;
    hooks.owner = std::move(owner);
    hooks.previous = tail_;
    hooks.next = nullptr;
    (tail_ != nullptr ? tail_->registry_hooks().next : head_) = member;
    tail_ = member;
    ++size_;
  }

  /// Unlists `member` and drops the list's reference, which may destroy it:
  /// the caller touches nothing of it afterwards unless it holds its own.
  /// Returns 1, or 0 if it was not listed.
  std::size_t erase(LoopMember* member) noexcept {
    if (!member->registry_hooks().owner) return 0;
    std::shared_ptr<LoopMember> owner = unlink(member);
    return 1;  // `owner` goes last, after the member is no longer touched
  }

  bool empty() const noexcept { return head_ == nullptr; }

  /// Calls `visit(member)` for every member, oldest first. `visit` must not
  /// list or unlist members.
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (LoopMember* member = head_; member != nullptr; member = member->registry_hooks().next) {
      visit(*member);
    }
  }
  std::size_t size() const noexcept { return size_; }

  /// Unlists every member and hands over the list's references, oldest first.
  std::vector<std::shared_ptr<LoopMember>> take_all() {
    std::vector<std::shared_ptr<LoopMember>> members;
    members.reserve(size_);
    while (head_ != nullptr) members.push_back(unlink(head_));
    return members;
  }

  void clear() noexcept {
    while (head_ != nullptr) (void)unlink(head_);
  }

 private:
  std::shared_ptr<LoopMember> unlink(LoopMember* member) noexcept {
    LoopMember::RegistryHooks& hooks = member->registry_hooks();
    (hooks.previous != nullptr ? hooks.previous->registry_hooks().next : head_) = hooks.next;
    (hooks.next != nullptr ? hooks.next->registry_hooks().previous : tail_) = hooks.previous;
    hooks.previous = hooks.next = nullptr;
    --size_;
    return std::move(hooks.owner);
  }

  LoopMember* head_ = nullptr;
  LoopMember* tail_ = nullptr;
  std::size_t size_ = 0;
};

struct LoopRegistry {
  /// Ends everything registered; see the header comment for the order.
  void shutdown();

  std::unordered_set<std::shared_ptr<Server>> servers;
  LoopMemberList connectors;
  LoopMemberList transports;
};

}  // namespace tulip::detail
