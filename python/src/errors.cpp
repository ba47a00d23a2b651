// C++ exceptions from libtulip, as the Python exceptions asyncio raises.
#include <climits>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <system_error>

#include "py_ref.hpp"
#include "tulip/errors.hpp"

namespace tulip::python {

Names names;

void set_error_from_current_exception() {
  try {
    throw;
  } catch (const std::system_error& error) {
    int number = error.code().value();
    PyObject* args = Py_BuildValue("(is)", number, error.what());
    if (args != nullptr) {
      PyErr_SetObject(PyExc_OSError, args);
      Py_DECREF(args);
    }
  } catch (const std::invalid_argument& error) {
    PyErr_SetString(PyExc_ValueError, error.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

int fd_from(PyObject* object) {
  long value = PyLong_AsLong(object);
  if (value == -1 && PyErr_Occurred()) return -1;
  if (value < 0 || value > INT_MAX) {
    PyErr_Format(PyExc_ValueError, "invalid file descriptor: %ld", value);
    return -1;
  }
  return static_cast<int>(value);
}

PyObject* os_error_or_none(int error_number) {
  if (error_number == 0) Py_RETURN_NONE;
  return PyObject_CallFunction(PyExc_OSError, "is", error_number, std::strerror(error_number));
}

}  // namespace tulip::python
