// Handle and TimerHandle (see handle.hpp).
#include "handle.hpp"

#include <memory>

namespace tulip::python {
namespace {

// asyncio's own formatting of a callback, for the exception handler's message.
PyObject* format_callback_source(PyObject* callback, PyObject* args) {
  static PyObject* formatter = nullptr;
  if (formatter == nullptr) {
    PyObject* module = PyImport_ImportModule("asyncio.format_helpers");
    if (module == nullptr) return nullptr;
    formatter = PyObject_GetAttrString(module, "_format_callback_source");
    Py_DECREF(module);
    if (formatter == nullptr) return nullptr;
  }
  return PyObject_CallFunctionObjArgs(formatter, callback, args, nullptr);
}

HandleObject* as_handle(PyObject* self) { return reinterpret_cast<HandleObject*>(self); }

int handle_traverse(PyObject* self, visitproc visit, void* arg) {
  HandleObject* handle = as_handle(self);
  Py_VISIT(handle->callback);
  Py_VISIT(handle->args);
  Py_VISIT(handle->context);
  Py_VISIT(handle->loop);
  return 0;
}

int handle_clear(PyObject* self) {
  HandleObject* handle = as_handle(self);
  Py_CLEAR(handle->callback);
  Py_CLEAR(handle->args);
  Py_CLEAR(handle->context);
  Py_CLEAR(handle->loop);
  return 0;
}

void handle_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  HandleObject* handle = as_handle(self);
  if (handle->weakrefs != nullptr) PyObject_ClearWeakRefs(self);
  handle_clear(self);
  std::destroy_at(&handle->timer);
  Py_TYPE(self)->tp_free(self);
}

PyObject* handle_cancel(PyObject* self, PyObject*) {
  HandleObject* handle = as_handle(self);
  if (!handle->cancelled) {
    handle->cancelled = true;
    // A cancelled timer leaves the C++ heap at once.
    handle->timer.cancel();
    // As asyncio outside debug mode: drop what the callback holds.
    Py_CLEAR(handle->callback);
    Py_CLEAR(handle->args);
  }
  Py_RETURN_NONE;
}

PyObject* handle_cancelled(PyObject* self, PyObject*) {
  return PyBool_FromLong(as_handle(self)->cancelled);
}

PyObject* handle_get_context(PyObject* self, PyObject*) {
  return Py_NewRef(as_handle(self)->context);
}

PyObject* handle_run_method(PyObject* self, PyObject*) {
  if (!run_c_handle(as_handle(self))) return nullptr;
  Py_RETURN_NONE;
}

PyObject* handle_when(PyObject* self, PyObject*) {
  return PyFloat_FromDouble(as_handle(self)->when);
}

PyObject* handle_repr(PyObject* self) {
  HandleObject* handle = as_handle(self);
  const char* kind = Py_IS_TYPE(self, &TimerHandleType) ? "TimerHandle" : "Handle";
  if (handle->cancelled) return PyUnicode_FromFormat("<%s cancelled>", kind);
  PyObject* source = format_callback_source(handle->callback, handle->args);
  if (source == nullptr) return nullptr;
  PyObject* text = nullptr;
  if (Py_IS_TYPE(self, &TimerHandleType)) {
    PyRef when = PyRef::steal(PyFloat_FromDouble(handle->when));
    if (when) text = PyUnicode_FromFormat("<%s when=%R %U>", kind, when.get(), source);
  } else {
    text = PyUnicode_FromFormat("<%s %U>", kind, source);
  }
  Py_DECREF(source);
  return text;
}

// TimerHandles order by deadline, as asyncio's.
PyObject* timer_richcompare(PyObject* self, PyObject* other, int op) {
  if (!PyObject_TypeCheck(other, &TimerHandleType)) Py_RETURN_NOTIMPLEMENTED;
  double a = as_handle(self)->when;
  double b = as_handle(other)->when;
  if (op == Py_EQ || op == Py_NE) {
    bool same = self == other;
    return PyBool_FromLong(op == Py_EQ ? same : !same);
  }
  Py_RETURN_RICHCOMPARE(a, b, op);
}

// As asyncio's TimerHandle: equal deadlines hash alike.
Py_hash_t timer_hash(PyObject* self) {
  PyRef when = PyRef::steal(PyFloat_FromDouble(as_handle(self)->when));
  return when ? PyObject_Hash(when.get()) : -1;
}

PyObject* handle_get_cancelled_attr(PyObject* self, void*) {
  return PyBool_FromLong(as_handle(self)->cancelled);
}
PyObject* handle_get_callback(PyObject* self, void*) {
  PyObject* value = as_handle(self)->callback;
  return Py_NewRef(value != nullptr ? value : Py_None);
}
PyObject* handle_get_args(PyObject* self, void*) {
  PyObject* value = as_handle(self)->args;
  return Py_NewRef(value != nullptr ? value : Py_None);
}
PyObject* handle_get_loop(PyObject* self, void*) { return Py_NewRef(as_handle(self)->loop); }
PyObject* handle_get_context_attr(PyObject* self, void*) {
  return Py_NewRef(as_handle(self)->context);
}
PyObject* handle_get_none(PyObject*, void*) { Py_RETURN_NONE; }
PyObject* handle_get_when(PyObject* self, void*) {
  return PyFloat_FromDouble(as_handle(self)->when);
}

// asyncio's private attributes, which asyncio's own code and tools read.
PyGetSetDef handle_getset[] = {{"_cancelled", handle_get_cancelled_attr, nullptr, nullptr, nullptr},
                               {"_callback", handle_get_callback, nullptr, nullptr, nullptr},
                               {"_args", handle_get_args, nullptr, nullptr, nullptr},
                               {"_loop", handle_get_loop, nullptr, nullptr, nullptr},
                               {"_context", handle_get_context_attr, nullptr, nullptr, nullptr},
                               {"_source_traceback", handle_get_none, nullptr, nullptr, nullptr},
                               {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyGetSetDef timer_getset[] = {{"_when", handle_get_when, nullptr, nullptr, nullptr},
                              {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMethodDef handle_methods[] = {
    {"cancel", handle_cancel, METH_NOARGS, "Cancel the call; the callback is released."},
    {"cancelled", handle_cancelled, METH_NOARGS, "Whether cancel() was called."},
    {"get_context", handle_get_context, METH_NOARGS, "The contextvars.Context of the call."},
    {"_run", handle_run_method, METH_NOARGS, "Run the callback as the loop does."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef timer_methods[] = {
    {"when", handle_when, METH_NOARGS, "The loop time the call is scheduled for."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

HandleObject* make_handle(PyTypeObject* type, PyObject* loop, PyObject* callback, PyObject* args,
                          PyObject* context) {
  PyObject* own_context =
      context == nullptr || context == Py_None ? PyContext_CopyCurrent() : Py_NewRef(context);
  if (own_context == nullptr) return nullptr;
  auto* handle = PyObject_GC_New(HandleObject, type);
  if (handle == nullptr) {
    Py_DECREF(own_context);
    return nullptr;
  }
  handle->callback = Py_NewRef(callback);
  handle->args = Py_NewRef(args);
  handle->context = own_context;
  handle->loop = Py_NewRef(loop);
  handle->weakrefs = nullptr;
  handle->cancelled = false;
  handle->when = 0.0;
  std::construct_at(&handle->timer);
  PyObject_GC_Track(handle);
  return handle;
}

bool run_c_handle(HandleObject* handle) {
  if (handle->cancelled) return true;
  // The call may cancel this handle (dropping callback and args): hold them.
  PyRef callback = PyRef::borrow(handle->callback);
  PyRef args = PyRef::borrow(handle->args);
  PyObject* result = nullptr;
  if (PyContext_Enter(handle->context) == 0) {
    result = PyObject_Vectorcall(callback.get(), &PyTuple_GET_ITEM(args.get(), 0),
                                 static_cast<size_t>(PyTuple_GET_SIZE(args.get())), nullptr);
    PyContext_Exit(handle->context);
  }
  if (result != nullptr) {
    Py_DECREF(result);
    return true;
  }
  if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
    return false;
  }
  // asyncio: any other exception (CancelledError included) goes to the loop's
  // exception handler with the handle.
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  if (traceback != nullptr) PyException_SetTraceback(value, traceback);
  Py_XDECREF(type);
  Py_XDECREF(traceback);
  PyRef exception = PyRef::steal(value);
  PyRef source = PyRef::steal(format_callback_source(callback.get(), args.get()));
  PyRef message = source
                      ? PyRef::steal(PyUnicode_FromFormat("Exception in callback %U", source.get()))
                      : PyRef();
  PyRef details = message ? PyRef::steal(Py_BuildValue("{s:O,s:O,s:O}", "message", message.get(),
                                                       "exception", exception.get(), "handle",
                                                       reinterpret_cast<PyObject*>(handle)))
                          : PyRef();
  PyObject* handled =
      details ? PyObject_CallMethodOneArg(handle->loop, names.call_exception_handler, details.get())
              : nullptr;
  if (handled == nullptr) {
    // The handler itself failed: as asyncio, that escapes only if fatal.
    if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
        PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
      return false;
    }
    PyErr_WriteUnraisable(handle->loop);
    return true;
  }
  Py_DECREF(handled);
  return true;
}

PyTypeObject HandleType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "tulip._core.Handle";
  type.tp_basicsize = sizeof(HandleObject);
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE;
  type.tp_doc = "A callback scheduled with call_soon (asyncio.Handle's API).";
  type.tp_dealloc = handle_dealloc;
  type.tp_traverse = handle_traverse;
  type.tp_clear = handle_clear;
  type.tp_repr = handle_repr;
  type.tp_weaklistoffset = offsetof(HandleObject, weakrefs);
  type.tp_methods = handle_methods;
  type.tp_getset = handle_getset;
  return type;
}();

PyTypeObject TimerHandleType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "tulip._core.TimerHandle";
  type.tp_basicsize = sizeof(HandleObject);
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
  type.tp_doc = "A callback scheduled with call_later/call_at (asyncio.TimerHandle's API).";
  type.tp_base = &HandleType;
  type.tp_dealloc = handle_dealloc;
  type.tp_traverse = handle_traverse;
  type.tp_clear = handle_clear;
  type.tp_repr = handle_repr;
  type.tp_richcompare = timer_richcompare;
  type.tp_hash = timer_hash;
  type.tp_methods = timer_methods;
  type.tp_getset = timer_getset;
  return type;
}();

bool add_handle_types(PyObject* module) {
  if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&TimerHandleType) < 0) return false;
  return PyModule_AddObjectRef(module, "Handle", reinterpret_cast<PyObject*>(&HandleType)) == 0 &&
         PyModule_AddObjectRef(module, "TimerHandle",
                               reinterpret_cast<PyObject*>(&TimerHandleType)) == 0;
}

}  // namespace tulip::python
