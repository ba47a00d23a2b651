// LoopCore (see loop_core.hpp): asyncio Handles scheduled on tulip's C++ loop.
#include "loop_core.hpp"

#include <exception>
#include <string>

#include "handle.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/loop_options.hpp"

namespace tulip::python {
namespace {

// ---- Running asyncio Handles --------------------------------------------------

void run_handle(LoopCoreObject* core, PyObject* handle);

// What every queued callback captures: the core (borrowed: it owns the C++
// loop, so it outlives every callback) and one reference to the Handle.
struct HandleCall {
  LoopCoreObject* core;
  PyRef handle;
  void operator()() { run_handle(core, handle.get()); }
};

void run_handle(LoopCoreObject* core, PyObject* handle) {
  if (core->pending_type != nullptr) {
    // The loop is stopping to raise a SystemExit or KeyboardInterrupt: as
    // asyncio, leave the rest of this batch for the next run, in order.
    core->loop->call_soon(HandleCall{core, PyRef::borrow(handle)});
    return;
  }
  if (is_c_handle(handle)) {
    if (!run_c_handle(reinterpret_cast<HandleObject*>(handle))) stash_error_and_stop(core);
    return;
  }
  // asyncio's loop skips a cancelled Handle without calling it.
  PyObject* cancelled = PyObject_GetAttr(handle, names.cancelled);
  if (cancelled == nullptr) {
    stash_error_and_stop(core);
    return;
  }
  bool skip = cancelled == Py_True;
  Py_DECREF(cancelled);
  if (skip) return;
  // Handle._run reports ordinary exceptions to the loop's exception handler
  // itself; only SystemExit and KeyboardInterrupt come out.
  PyObject* result = PyObject_CallMethodNoArgs(handle, names.run);
  if (result == nullptr) {
    stash_error_and_stop(core);
    return;
  }
  Py_DECREF(result);
}

// A Handle watched for readiness: run at every event until removed. A
// cancelled Handle removes itself, as asyncio's selector loop does.
struct WatchCall {
  LoopCoreObject* core;
  PyRef handle;
  int fd;
  bool reader;
  void operator()() {
    PyObject* cancelled = PyObject_GetAttr(handle.get(), names.cancelled);
    if (cancelled == nullptr) {
      stash_error_and_stop(core);
      return;
    }
    bool skip = cancelled == Py_True;
    Py_DECREF(cancelled);
    if (skip) {
      // Removing the watch here is safe: the watcher holds this callable for
      // the length of the call.
      if (reader) {
        core->loop->remove_reader(fd);
      } else {
        core->loop->remove_writer(fd);
      }
      return;
    }
    run_handle(core, handle.get());
  }
};

bool check_open(LoopCoreObject* core) {
  if (core->loop == nullptr || core->owner == nullptr || core->loop->is_closed()) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return false;
  }
  return true;
}

// ---- TimerRef: the C++ side of one asyncio TimerHandle --------------------------

struct TimerRefObject {
  PyObject_HEAD TimerHandle timer;
};

PyObject* timer_ref_cancel(PyObject* self, PyObject*) {
  reinterpret_cast<TimerRefObject*>(self)->timer.cancel();
  Py_RETURN_NONE;
}

void timer_ref_dealloc(PyObject* self) {
  std::destroy_at(&reinterpret_cast<TimerRefObject*>(self)->timer);
  Py_TYPE(self)->tp_free(self);
}

PyMethodDef timer_ref_methods[] = {
    {"cancel", timer_ref_cancel, METH_NOARGS, "Drop the timer from the loop's heap."},
    {nullptr, nullptr, 0, nullptr}};

// ---- LoopCore methods -----------------------------------------------------------

LoopCoreObject* as_core(PyObject* self) { return reinterpret_cast<LoopCoreObject*>(self); }

PyObject* core_call_soon(PyObject* self, PyObject* handle) {
  LoopCoreObject* core = as_core(self);
  if (!check_open(core)) return nullptr;
  core->loop->call_soon(HandleCall{core, PyRef::borrow(handle)});
  Py_RETURN_NONE;
}

PyObject* core_call_at(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  LoopCoreObject* core = as_core(self);
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "call_at(when, handle)");
    return nullptr;
  }
  double when = PyFloat_AsDouble(args[0]);
  if (when == -1.0 && PyErr_Occurred()) return nullptr;
  if (!check_open(core)) return nullptr;
  auto* ref = PyObject_New(TimerRefObject, &TimerRefType);
  if (ref == nullptr) return nullptr;
  std::construct_at(&ref->timer);
  try {
    ref->timer = core->loop->call_at(when, HandleCall{core, PyRef::borrow(args[1])});
  } catch (...) {
    Py_DECREF(ref);
    set_error_from_current_exception();
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(ref);
}

// The fast paths: call_soon(callback, *args, context=None),
// call_at(when, callback, *args, context=None) and call_later(delay, ...)
// making tulip._core Handles. `leading` positional arguments come before the
// callback.
bool parse_schedule_args(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                         Py_ssize_t leading, const char* method, PyObject** callback,
                         PyRef& call_args, PyObject** context) {
  *context = nullptr;
  if (kwnames != nullptr) {
    Py_ssize_t keywords = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < keywords; ++i) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, i);
      if (!PyUnicode_Check(key) || PyUnicode_CompareWithASCIIString(key, "context") != 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", method, key);
        return false;
      }
      *context = args[nargs + i];
    }
  }
  if (nargs < leading + 1) {
    PyErr_Format(PyExc_TypeError, "%s() missing its callback argument", method);
    return false;
  }
  *callback = args[leading];
  Py_ssize_t count = nargs - leading - 1;
  call_args = PyRef::steal(PyTuple_New(count));
  if (!call_args) return false;
  for (Py_ssize_t i = 0; i < count; ++i) {
    PyTuple_SET_ITEM(call_args.get(), i, Py_NewRef(args[leading + 1 + i]));
  }
  return true;
}

PyObject* core_fast_call_soon(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                              PyObject* kwnames) {
  LoopCoreObject* core = as_core(self);
  PyObject* callback;
  PyObject* context;
  PyRef call_args;
  if (!parse_schedule_args(args, nargs, kwnames, 0, "call_soon", &callback, call_args, &context)) {
    return nullptr;
  }
  if (!check_open(core)) return nullptr;
  HandleObject* handle = make_handle(&HandleType, core->owner, callback, call_args.get(), context);
  if (handle == nullptr) return nullptr;
  core->loop->call_soon(HandleCall{core, PyRef::borrow(reinterpret_cast<PyObject*>(handle))});
  return reinterpret_cast<PyObject*>(handle);
}

// create_task(coro, *, name=None, context=None) with no task factory:
// asyncio.Task(coro, loop=..., name=name, context=context), as
// BaseEventLoop.create_task does, without its Python frame. (In debug mode and
// with a task factory the loop uses BaseEventLoop's.)
PyObject* core_fast_create_task(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                PyObject* kwnames) {
  LoopCoreObject* core = as_core(self);
  // asyncio.Task and the keyword names, looked up once (kept for the process).
  static PyObject* task_type = nullptr;
  static PyObject* task_kwnames = nullptr;
  if (task_type == nullptr) {
    PyObject* tasks = PyImport_ImportModule("asyncio.tasks");
    if (tasks == nullptr) return nullptr;
    task_type = PyObject_GetAttrString(tasks, "Task");
    Py_DECREF(tasks);
    if (task_type == nullptr) return nullptr;
  }
  if (task_kwnames == nullptr) {
    task_kwnames = Py_BuildValue("(sss)", "loop", "name", "context");
    if (task_kwnames == nullptr) return nullptr;
  }
  if (nargs != 1) {
    PyErr_Format(PyExc_TypeError, "create_task() takes 1 positional argument (%zd given)", nargs);
    return nullptr;
  }
  PyObject* name = Py_None;
  PyObject* context = Py_None;
  Py_ssize_t keywords = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t i = 0; i < keywords; ++i) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, i);
    if (PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, "name") == 0) {
      name = args[nargs + i];
    } else if (PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, "context") == 0) {
      context = args[nargs + i];
    } else {
      PyErr_Format(PyExc_TypeError, "create_task() got an unexpected keyword argument '%S'", key);
      return nullptr;
    }
  }
  if (!check_open(core)) return nullptr;
  PyObject* call[] = {args[0], core->owner, name, context};
  return PyObject_Vectorcall(task_type, call, 1, task_kwnames);
}

PyObject* schedule_timer(LoopCoreObject* core, double when, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* kwnames, const char* method) {
  PyObject* callback;
  PyObject* context;
  PyRef call_args;
  if (!parse_schedule_args(args, nargs, kwnames, 1, method, &callback, call_args, &context)) {
    return nullptr;
  }
  if (!check_open(core)) return nullptr;
  HandleObject* handle =
      make_handle(&TimerHandleType, core->owner, callback, call_args.get(), context);
  if (handle == nullptr) return nullptr;
  handle->when = when;
  try {
    handle->timer = core->loop->call_at(
        when, HandleCall{core, PyRef::borrow(reinterpret_cast<PyObject*>(handle))});
  } catch (...) {
    Py_DECREF(handle);
    set_error_from_current_exception();
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(handle);
}

double time_argument(PyObject* const* args, Py_ssize_t nargs, const char* what) {
  if (nargs < 1 || args[0] == Py_None) {
    PyErr_Format(PyExc_TypeError, "%s must not be None", what);
    return -1.0;
  }
  return PyFloat_AsDouble(args[0]);
}

PyObject* core_fast_call_at(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  double when = time_argument(args, nargs, "when");
  if (when == -1.0 && PyErr_Occurred()) return nullptr;
  return schedule_timer(as_core(self), when, args, nargs, kwnames, "call_at");
}

PyObject* core_fast_call_later(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                               PyObject* kwnames) {
  double delay = time_argument(args, nargs, "delay");
  if (delay == -1.0 && PyErr_Occurred()) return nullptr;
  LoopCoreObject* core = as_core(self);
  if (!check_open(core)) return nullptr;
  return schedule_timer(core, core->loop->time() + delay, args, nargs, kwnames, "call_later");
}

PyObject* core_call_soon_threadsafe(PyObject* self, PyObject* handle) {
  LoopCoreObject* core = as_core(self);
  if (!check_open(core)) return nullptr;
  try {
    // The caller holds the GIL, and the loop's thread touches its ready queue
    // only while holding it: the Handle joins the same queue as call_soon's,
    // in the same order as asyncio. The empty threadsafe call wakes the loop.
    core->loop->call_soon(HandleCall{core, PyRef::borrow(handle)});
    core->loop->call_soon_threadsafe([] {});
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* core_time(PyObject* self, PyObject*) {
  return PyFloat_FromDouble(as_core(self)->loop->time());
}

PyObject* core_run_forever(PyObject* self, PyObject*) {
  LoopCoreObject* core = as_core(self);
  if (!check_open(core)) return nullptr;
  try {
    core->loop->run_forever();
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
  if (core->pending_type != nullptr) {
    PyErr_Restore(core->pending_type, core->pending_value, core->pending_traceback);
    core->pending_type = core->pending_value = core->pending_traceback = nullptr;
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* core_stop(PyObject* self, PyObject*) {
  as_core(self)->loop->stop();
  Py_RETURN_NONE;
}

PyObject* core_close(PyObject* self, PyObject*) {
  try {
    // Destroys the callbacks that never ran, and with them their Handles.
    as_core(self)->loop->close();
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* core_is_closed(PyObject* self, PyObject*) {
  return PyBool_FromLong(as_core(self)->loop->is_closed());
}

PyObject* watch(PyObject* self, PyObject* const* args, Py_ssize_t nargs, bool reader) {
  LoopCoreObject* core = as_core(self);
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "add_reader/add_writer(fd, handle)");
    return nullptr;
  }
  int fd = fd_from(args[0]);
  if (fd == -1 && PyErr_Occurred()) return nullptr;
  if (!check_open(core)) return nullptr;
  try {
    WatchCall call{core, PyRef::borrow(args[1]), fd, reader};
    if (reader) {
      core->loop->add_reader(fd, std::move(call));
    } else {
      core->loop->add_writer(fd, std::move(call));
    }
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* core_add_reader(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return watch(self, args, nargs, true);
}
PyObject* core_add_writer(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return watch(self, args, nargs, false);
}

PyObject* unwatch(PyObject* self, PyObject* arg, bool reader) {
  LoopCoreObject* core = as_core(self);
  int fd = fd_from(arg);
  if (fd == -1 && PyErr_Occurred()) return nullptr;
  if (core->loop->is_closed()) Py_RETURN_FALSE;
  try {
    return PyBool_FromLong(reader ? core->loop->remove_reader(fd) : core->loop->remove_writer(fd));
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
}
PyObject* core_remove_reader(PyObject* self, PyObject* arg) { return unwatch(self, arg, true); }
PyObject* core_remove_writer(PyObject* self, PyObject* arg) { return unwatch(self, arg, false); }

PyObject* core_pending_counts(PyObject* self, PyObject*) {
  EventLoop* loop = as_core(self)->loop;
  return Py_BuildValue("(nn)", static_cast<Py_ssize_t>(loop->ready_count()),
                       static_cast<Py_ssize_t>(loop->scheduled_timer_count()));
}

// The C++ loop's own errors (a transport's internal failure) go to the Python
// loop's exception handler, as asyncio reports its own.
void forward_exception(LoopCoreObject* core, const ExceptionContext& context) {
  // While the core is being destroyed its owner is already gone.
  if (core->owner == nullptr) return;
  PyObject* details = Py_BuildValue("{s:s}", "message", describe(context).c_str());
  PyObject* result = details == nullptr ? nullptr
                                        : PyObject_CallMethodOneArg(
                                              core->owner, names.call_exception_handler, details);
  Py_XDECREF(details);
  if (result == nullptr) {
    PyErr_WriteUnraisable(core->owner);
  } else {
    Py_DECREF(result);
  }
}

// LoopCore(owner, backend="auto"): `backend` as TULIP_BACKEND spells it
// ("auto" reads TULIP_BACKEND, then prefers io_uring).
PyObject* core_new(PyTypeObject* type, PyObject* args, PyObject*) {
  PyObject* owner;
  const char* backend = "auto";
  if (!PyArg_ParseTuple(args, "O|s", &owner, &backend)) return nullptr;
  EventLoopOptions options;
  try {
    options.backend = parse_backend_kind(backend);
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
  auto* core = reinterpret_cast<LoopCoreObject*>(type->tp_alloc(type, 0));
  if (core == nullptr) return nullptr;
  core->owner = owner;
  try {
    core->loop = new EventLoop(options);
    core->hooks = new GilReleasingHooks(core);
  } catch (...) {
    Py_DECREF(core);
    set_error_from_current_exception();
    return nullptr;
  }
  core->loop->set_wait_hooks(core->hooks);
  core->loop->set_exception_handler(
      [core](EventLoop&, const ExceptionContext& context) { forward_exception(core, context); });
  return reinterpret_cast<PyObject*>(core);
}

void core_dealloc(PyObject* self) {
  LoopCoreObject* core = as_core(self);
  if (core->loop != nullptr) {
    // Closing destroys what pending callbacks captured: Handles, protocols.
    // Keep this object alive meanwhile; the owning tulip.EventLoop is being
    // torn down, so nothing is forwarded to it any more.
    core->owner = nullptr;
    Py_SET_REFCNT(self, 1);
    try {
      if (!core->loop->is_running()) core->loop->close();
    } catch (...) {
    }
    delete core->loop;
    core->loop = nullptr;
    Py_SET_REFCNT(self, 0);
  }
  delete core->hooks;
  Py_XDECREF(core->pending_type);
  Py_XDECREF(core->pending_value);
  Py_XDECREF(core->pending_traceback);
  Py_TYPE(self)->tp_free(self);
}

PyObject* core_backend_name(PyObject* self, PyObject*) {
  auto* core = reinterpret_cast<LoopCoreObject*>(self);
  if (core->loop == nullptr) Py_RETURN_NONE;
  return PyUnicode_FromString(core->loop->backend_name());
}

PyMethodDef core_methods[] = {
    {"backend_name", core_backend_name, METH_NOARGS, "The C++ loop's backend: epoll or io_uring."},
    {"call_soon", core_call_soon, METH_O, "Queue an asyncio Handle."},
    {"call_at", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_call_at)),
     METH_FASTCALL, "Run a Handle at loop time `when`; returns its TimerRef."},
    {"fast_call_soon",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_fast_call_soon)),
     METH_FASTCALL | METH_KEYWORDS, "call_soon(callback, *args, context=None) -> Handle."},
    {"fast_create_task",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_fast_create_task)),
     METH_FASTCALL | METH_KEYWORDS, "create_task(coro, *, name=None, context=None) -> Task."},
    {"fast_call_at", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_fast_call_at)),
     METH_FASTCALL | METH_KEYWORDS, "call_at(when, callback, *args, context=None)."},
    {"fast_call_later",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_fast_call_later)),
     METH_FASTCALL | METH_KEYWORDS, "call_later(delay, callback, *args, context=None)."},
    {"call_soon_threadsafe", core_call_soon_threadsafe, METH_O,
     "Queue a Handle from any thread and wake the loop."},
    {"time", core_time, METH_NOARGS, "The loop's clock (CLOCK_MONOTONIC, seconds)."},
    {"run_forever", core_run_forever, METH_NOARGS, "Run until stop()."},
    {"stop", core_stop, METH_NOARGS, "Stop after the current iteration."},
    {"close", core_close, METH_NOARGS, "Close the C++ loop."},
    {"is_closed", core_is_closed, METH_NOARGS, "Whether close() ran."},
    {"add_reader", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_add_reader)),
     METH_FASTCALL, "Run a Handle whenever fd is readable."},
    {"add_writer", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_add_writer)),
     METH_FASTCALL, "Run a Handle whenever fd is writable."},
    {"remove_reader", core_remove_reader, METH_O, "Stop watching fd for reading."},
    {"remove_writer", core_remove_writer, METH_O, "Stop watching fd for writing."},
    {"pending_counts", core_pending_counts, METH_NOARGS,
     "(ready callbacks, timer heap entries): for leak tests."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

// ---- Hooks ---------------------------------------------------------------------------

void GilReleasingHooks::before_wait() noexcept { saved_ = PyEval_SaveThread(); }

void GilReleasingHooks::after_wait() noexcept {
  PyEval_RestoreThread(saved_);
  saved_ = nullptr;
  // A signal that interrupted the wait: run Python's handlers now (the default
  // SIGINT handler raises KeyboardInterrupt), as select() does for asyncio.
  if (PyErr_CheckSignals() < 0) stash_error_and_stop(core_);
}

void stash_error_and_stop(LoopCoreObject* core) noexcept {
  if (core->pending_type == nullptr) {
    PyErr_Fetch(&core->pending_type, &core->pending_value, &core->pending_traceback);
  } else {
    PyErr_WriteUnraisable(core->owner);
  }
  core->loop->stop();
}

PyTypeObject LoopCoreType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "tulip._core.LoopCore";
  type.tp_basicsize = sizeof(LoopCoreObject);
  type.tp_flags = Py_TPFLAGS_DEFAULT;
  type.tp_doc = "The C++ event loop under one tulip.EventLoop.";
  type.tp_new = core_new;
  type.tp_dealloc = core_dealloc;
  type.tp_methods = core_methods;
  return type;
}();

PyTypeObject TimerRefType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "tulip._core.TimerRef";
  type.tp_basicsize = sizeof(TimerRefObject);
  type.tp_flags = Py_TPFLAGS_DEFAULT;
  type.tp_doc = "The C++ timer behind one asyncio TimerHandle.";
  type.tp_dealloc = timer_ref_dealloc;
  type.tp_methods = timer_ref_methods;
  return type;
}();

bool add_loop_types(PyObject* module) {
  if (PyType_Ready(&LoopCoreType) < 0 || PyType_Ready(&TimerRefType) < 0) return false;
  return PyModule_AddObjectRef(module, "LoopCore", reinterpret_cast<PyObject*>(&LoopCoreType)) ==
             0 &&
         PyModule_AddObjectRef(module, "TimerRef", reinterpret_cast<PyObject*>(&TimerRefType)) == 0;
}

}  // namespace tulip::python
