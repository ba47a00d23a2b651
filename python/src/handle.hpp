// tulip._core.Handle and tulip._core.TimerHandle: asyncio's Handle and
// TimerHandle, in C.
//
// call_soon / call_later / call_at make one of these (outside debug mode; see
// python/tulip/_loop.py) instead of asyncio's pure-Python Handle: the same
// methods (cancel, cancelled, get_context, when) and the same _run (the
// callback in its context; an exception goes to the loop's exception handler,
// SystemExit and KeyboardInterrupt propagate), at a fraction of the cost. As
// uvloop's, they are compatible with asyncio's, not instances of its classes.
//
// Thread-safety: the GIL.
#pragma once

#include "py_ref.hpp"
#include "tulip/handle.hpp"

namespace tulip::python {

struct HandleObject {
  PyObject_HEAD PyObject* callback;  // null once cancelled
  PyObject* args;                    // a tuple; null once cancelled
  PyObject* context;                 // the contextvars.Context the callback runs in
  PyObject* loop;                    // the tulip.EventLoop
  PyObject* weakrefs;
  bool cancelled;
  // TimerHandle only.
  double when;
  TimerHandle timer;
};

extern PyTypeObject HandleType;
extern PyTypeObject TimerHandleType;

inline bool is_c_handle(PyObject* object) {
  return Py_IS_TYPE(object, &HandleType) || Py_IS_TYPE(object, &TimerHandleType);
}

/// A new Handle (or TimerHandle) for callback(*args) in `context` (null: a copy
/// of the current one); a new reference, or null with an exception set.
HandleObject* make_handle(PyTypeObject* type, PyObject* loop, PyObject* callback, PyObject* args,
                          PyObject* context);

/// Runs the handle as asyncio's Handle._run does. Returns false only for an
/// exception that must stop the loop (SystemExit, KeyboardInterrupt), left set.
bool run_c_handle(HandleObject* handle);

/// Adds the types to `module`.
bool add_handle_types(PyObject* module);

}  // namespace tulip::python
