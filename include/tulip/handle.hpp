// Handle and TimerHandle: what call_soon / call_later / call_at return.
//
// As in asyncio, a handle lets you cancel a scheduled callback before it runs.
// A Handle is a cheap reference-counted pointer to the loop's internal node: it
// can be copied, kept after the callback ran, and even kept (or cancelled, which
// is then a no-op) after its loop was destroyed. Dropping a Handle never cancels
// the callback.
//
// Thread-safety: a Handle belongs to its loop's thread. To cancel from another
// thread, call_soon_threadsafe a lambda that cancels it.
#pragma once

#include <cstdint>
#include <utility>

#include "tulip/detail/callback_node.hpp"
#include "tulip/export.hpp"

namespace tulip {

class EventLoop;

/// A scheduled callback, to cancel it before it runs (asyncio.Handle).
class TULIP_API Handle {
 public:
  /// An empty Handle that refers to no callback.
  Handle() noexcept = default;
  /// Handles are cheap references: copies refer to the same callback.
  Handle(const Handle& other) noexcept : node_(other.node_) {
    if (node_ != nullptr) detail::NodePool::add_ref(node_);
  }
  /// Moves the reference; `other` becomes empty.
  Handle(Handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  /// Refers to `other`'s callback instead.
  Handle& operator=(Handle other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~Handle() {
    if (node_ != nullptr) detail::NodePool::release(node_);
  }

  /// Cancels the callback if it has not run yet: it will never run, and what it
  /// captured is destroyed now. No effect if it already ran, is running, or was
  /// cancelled. Returns nothing, like asyncio.
  void cancel() noexcept;

  /// True if cancel() took effect (asyncio's Handle.cancelled()).
  bool cancelled() const noexcept {
    return node_ != nullptr && node_->state == detail::CallbackState::kCancelled;
  }

  /// True while the callback is scheduled and has not started (a tulip addition).
  bool pending() const noexcept {
    return node_ != nullptr && node_->state == detail::CallbackState::kPending;
  }

  /// False for a default-constructed Handle.
  explicit operator bool() const noexcept { return node_ != nullptr; }

 protected:
  /// @cond INTERNAL
  friend class EventLoop;
  explicit Handle(detail::CallbackNode* adopted) noexcept : node_(adopted) {}

  detail::CallbackNode* node_ = nullptr;
  /// @endcond
};

/// A Handle for call_later/call_at; when() is the deadline on the loop's clock.
class TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;

  /// The scheduled time, in seconds on the loop's time() scale.
  double when() const noexcept {
    return node_ == nullptr ? 0.0 : static_cast<double>(node_->when_ns) * 1e-9;
  }

 private:
  friend class EventLoop;
  explicit TimerHandle(detail::CallbackNode* adopted) noexcept : Handle(adopted) {}
};

}  // namespace tulip
