// Small helpers shared by the extension's sources: an owning reference to a
// Python object, interned names, and the bridge from C++ exceptions to Python's.
//
// Thread-safety: everything here needs the GIL.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <utility>

namespace tulip::python {

/// Owns one strong reference. Callbacks queued on the C++ loop capture these;
/// the loop runs and destroys callbacks only while the GIL is held (it is
/// released only inside the blocking poll), so the Py_DECREF is safe.
class PyRef {
 public:
  PyRef() noexcept = default;
  /// Takes a new reference of `object` (the caller keeps its own).
  static PyRef borrow(PyObject* object) noexcept {
    Py_XINCREF(object);
    return PyRef(object);
  }
  /// Adopts a reference the caller owned.
  static PyRef steal(PyObject* object) noexcept { return PyRef(object); }
  PyRef(const PyRef& other) noexcept : object_(other.object_) { Py_XINCREF(object_); }
  PyRef(PyRef&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
  PyRef& operator=(PyRef other) noexcept {
    std::swap(object_, other.object_);
    return *this;
  }
  ~PyRef() { Py_XDECREF(object_); }

  PyObject* get() const noexcept { return object_; }
  PyObject* release() noexcept { return std::exchange(object_, nullptr); }
  void reset() noexcept { Py_CLEAR(object_); }
  explicit operator bool() const noexcept { return object_ != nullptr; }

 private:
  explicit PyRef(PyObject* object) noexcept : object_(object) {}
  PyObject* object_ = nullptr;
};

/// Interned attribute names, made once at import.
struct Names {
  PyObject* run;                     // "_run"
  PyObject* cancelled;               // "_cancelled"
  PyObject* connection_made;         // "connection_made"
  PyObject* connection_lost;         // "connection_lost"
  PyObject* data_received;           // "data_received"
  PyObject* eof_received;            // "eof_received"
  PyObject* get_buffer;              // "get_buffer"
  PyObject* buffer_updated;          // "buffer_updated"
  PyObject* pause_writing;           // "pause_writing"
  PyObject* resume_writing;          // "resume_writing"
  PyObject* call_exception_handler;  // "call_exception_handler"
  PyObject* on_connection_lost;      // "_on_connection_lost"
};
extern Names names;

/// Sets the Python error that matches the C++ exception being handled
/// (OSError with errno for std::system_error, RuntimeError, ValueError...).
/// Call from a catch block only.
void set_error_from_current_exception();

/// A file descriptor from a Python int: -1 with an exception set when it is
/// not one (OverflowError, TypeError, ValueError for a negative number).
int fd_from(PyObject* object);

/// An OSError instance for `error` (a new reference), or None when it is empty.
PyObject* os_error_or_none(int error_number);

}  // namespace tulip::python
