// CallbackNode and NodePool: the storage behind every scheduled callback.
//
// A callback scheduled with call_soon/call_later lives in a CallbackNode. Nodes
// are recycled through a per-loop free list, so steady-state scheduling performs
// no allocation, and a Handle points straight at its node, so cancelling needs no
// lookup. A node is reference counted (non-atomically: nodes belong to the loop's
// thread) by the queue that holds it and by every Handle that refers to it; it
// returns to the pool when the last reference goes.
//
// The pool can outlive its loop: when the loop is destroyed it marks the pool
// orphaned, and the pool deletes itself once the last node that a Handle still
// holds is released. That makes it safe to keep, query or cancel a Handle after
// its loop is gone.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tulip/detail/inline_function.hpp"

namespace tulip {
class EventLoop;
}

namespace tulip::detail {

class NodePool;

/// Where a scheduled callback is in its life.
enum class CallbackState : std::uint8_t {
  kPending,    // queued (ready queue or timer heap), will run
  kRunning,    // being invoked right now
  kCancelled,  // cancel() was called before it ran; it never will
  kFinished,   // it ran
};

struct CallbackNode {
  CallbackNode* next = nullptr;  // ready-queue link
  NodePool* pool = nullptr;
  std::uint32_t refs = 0;
  CallbackState state = CallbackState::kPending;
  bool is_timer = false;
  std::int64_t when_ns = 0;    // timers only: deadline on the loop's monotonic clock
  std::uint64_t sequence = 0;  // timers only: breaks ties so equal deadlines keep FIFO order
  InlineFunction<void()> callback;
};

class NodePool {
 public:
  explicit NodePool(EventLoop* loop) noexcept : loop_(loop) {}
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;

  /// The owning loop, or null once the loop is destroyed.
  EventLoop* loop() const noexcept { return loop_; }

  /// A fresh node with one reference (the caller's), state kPending.
  CallbackNode* acquire() {
    CallbackNode* node = free_;
    if (node != nullptr) {
      free_ = node->next;
      --free_count_;
    } else {
      node = new CallbackNode;
      node->pool = this;
    }
    ++outstanding_;
    node->next = nullptr;
    node->refs = 1;
    node->state = CallbackState::kPending;
    node->is_timer = false;
    return node;
  }

  static void add_ref(CallbackNode* node) noexcept { ++node->refs; }

  static void release(CallbackNode* node) noexcept {
    if (--node->refs == 0) node->pool->recycle(node);
  }

  /// Called by the loop's destructor, after it dropped every reference it held.
  /// Deletes the pool now if no Handle keeps a node, or later when the last one goes.
  void orphan() noexcept {
    loop_ = nullptr;
    while (free_ != nullptr) {
      CallbackNode* next = free_->next;
      delete free_;
      free_ = next;
    }
    free_count_ = 0;
    if (outstanding_ == 0) delete this;
  }

 private:
  // Bursts of scheduling should not pin their peak memory forever: beyond this many
  // idle nodes, released nodes are freed instead of kept.
  static constexpr std::size_t kMaxFreeNodes = 4096;

  void recycle(CallbackNode* node) noexcept {
    // Drop captured state now, not when the node is reused: captures may own
    // resources (sockets, futures) whose release must not be delayed.
    node->callback.reset();
    --outstanding_;
    if (loop_ != nullptr && free_count_ < kMaxFreeNodes) {
      node->next = free_;
      free_ = node;
      ++free_count_;
      return;
    }
    delete node;
    if (loop_ == nullptr && outstanding_ == 0) delete this;
  }

  EventLoop* loop_;
  CallbackNode* free_ = nullptr;
  std::size_t free_count_ = 0;
  std::size_t outstanding_ = 0;  // nodes handed out and not yet recycled
};

/// FIFO of nodes linked through CallbackNode::next. Holds one reference per node.
class ReadyQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

  void push(CallbackNode* node) noexcept {
    node->next = nullptr;
    if (tail_ == nullptr) {
      head_ = node;
    } else {
      tail_->next = node;
    }
    tail_ = node;
    ++size_;
  }

  /// Moves every node out, leaving this empty; returns the old head.
  CallbackNode* take_all() noexcept {
    CallbackNode* head = head_;
    head_ = tail_ = nullptr;
    size_ = 0;
    return head;
  }

 private:
  CallbackNode* head_ = nullptr;
  CallbackNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tulip::detail
