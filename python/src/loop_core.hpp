// LoopCore: the Python object that owns one tulip::EventLoop (tulip._core.LoopCore).
//
// tulip.EventLoop (python/tulip/_loop.py) keeps one as self._core and sends it
// asyncio's Handles: the C++ loop queues and times them and calls each
// Handle's _run() in asyncio's order. While the loop waits in the kernel the
// GIL is released (tulip::WaitHooks); when it wakes, pending signals are
// checked, so Ctrl-C raises KeyboardInterrupt out of run_forever as in asyncio.
//
// Thread-safety: the loop's thread only, but for call_soon_threadsafe.
#pragma once

#include "py_ref.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::python {

/// Releases the GIL around the loop's blocking poll and looks at signals after.
class GilReleasingHooks final : public WaitHooks {
 public:
  explicit GilReleasingHooks(struct LoopCoreObject* core) noexcept : core_(core) {}
  void before_wait() noexcept override;
  void after_wait() noexcept override;

 private:
  struct LoopCoreObject* core_;
  PyThreadState* saved_ = nullptr;
};

struct LoopCoreObject {
  PyObject_HEAD EventLoop* loop;  // owned; null after dealloc started
  GilReleasingHooks* hooks;       // owned
  PyObject* owner;                // the tulip.EventLoop (borrowed: it owns this object)
  // A SystemExit/KeyboardInterrupt (or a signal handler's exception) caught in
  // a callback: the loop stops and run_forever raises it.
  PyObject* pending_type;
  PyObject* pending_value;
  PyObject* pending_traceback;
};

extern PyTypeObject LoopCoreType;
extern PyTypeObject TimerRefType;

/// Keeps the Python error that is set for run_forever to raise (the first one
/// wins; later ones are reported as unraisable) and stops the loop.
void stash_error_and_stop(LoopCoreObject* core) noexcept;

/// Adds the types to `module`; false with an exception set on failure.
bool add_loop_types(PyObject* module);

}  // namespace tulip::python
