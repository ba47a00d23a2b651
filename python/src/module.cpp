// tulip._core: the C++ event loop and transports under the tulip Python package.
//
// Written with the CPython C API (METH_O / METH_FASTCALL, i.e. vectorcall),
// not pybind11: docs/python.md records the call overhead that decided it.
#include "handle.hpp"
#include "loop_core.hpp"
#include "py_ref.hpp"
#include "stream_transport.hpp"
#include "tulip/version.hpp"

namespace tulip::python {
namespace {

bool intern_names() {
  struct Entry {
    PyObject** slot;
    const char* text;
  };
  const Entry entries[] = {
      {&names.run, "_run"},
      {&names.cancelled, "_cancelled"},
      {&names.connection_made, "connection_made"},
      {&names.connection_lost, "connection_lost"},
      {&names.data_received, "data_received"},
      {&names.eof_received, "eof_received"},
      {&names.get_buffer, "get_buffer"},
      {&names.buffer_updated, "buffer_updated"},
      {&names.pause_writing, "pause_writing"},
      {&names.resume_writing, "resume_writing"},
      {&names.call_exception_handler, "call_exception_handler"},
      {&names.on_connection_lost, "_on_connection_lost"},
  };
  for (const Entry& entry : entries) {
    *entry.slot = PyUnicode_InternFromString(entry.text);
    if (*entry.slot == nullptr) return false;
  }
  return true;
}

PyModuleDef module_definition = {PyModuleDef_HEAD_INIT,
                                 "tulip._core",
                                 "tulip's C++ event loop and transports, for tulip.EventLoop.",
                                 -1,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr,
                                 nullptr};

}  // namespace
}  // namespace tulip::python

PyMODINIT_FUNC PyInit__core() {
  using namespace tulip::python;
  if (!intern_names()) return nullptr;
  PyObject* module = PyModule_Create(&module_definition);
  if (module == nullptr) return nullptr;
  if (!add_loop_types(module) || !add_handle_types(module) || !add_stream_transport_types(module) ||
      !add_stream_connect_functions(module) ||
      PyModule_AddStringConstant(module, "library_version", TULIP_VERSION_STRING) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
