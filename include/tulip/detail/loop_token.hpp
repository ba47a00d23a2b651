// LoopToken: a shared note of whether a loop still exists.
//
// Objects that may outlive their loop (Futures) hold a shared_ptr to the loop's
// token instead of a raw EventLoop*; the loop clears `loop` in its destructor.
//
// Thread-safety: `loop` is written once, by the loop's destructor on its thread.
#pragma once

namespace tulip {
class EventLoop;
}

namespace tulip::detail {

struct LoopToken {
  EventLoop* loop = nullptr;
};

}  // namespace tulip::detail
