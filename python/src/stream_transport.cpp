// StreamTransportCore (see stream_transport.hpp).
#include "stream_transport.hpp"

#include <any>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io_backend.hpp"
#include "loop_access.hpp"
#include "loop_core.hpp"
#include "socket_names.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/protocol.hpp"
#include "tulip/transport.hpp"

namespace tulip::python {
namespace {

// What both adapters share: the Python protocol and transport, and how a
// Python error in one of the protocol's callbacks is reported.
struct Bridge {
  LoopCoreObject* core;  // borrowed: the core owns the C++ loop, which owns the transport
  PyRef protocol;
  PyRef transport;  // the asyncio.Transport the protocol sees
  // A core made before its C++ transport existed (create_connection): gets the
  // transport at connection_made. Borrowed: `transport` holds it (as _core).
  TransportCoreObject* attach_to = nullptr;

  void attach(Transport& made) {
    if (attach_to == nullptr) return;
    if (!attach_to->transport) attach_to->transport = made.shared();
    attach_to = nullptr;
  }

  // The protocol's callback raised. asyncio: an Exception goes to the
  // transport's _fatal_error (exception handler, then abort); SystemExit and
  // KeyboardInterrupt stop the loop and come out of run_forever.
  void report(const char* message) {
    if (!PyErr_ExceptionMatches(PyExc_Exception) || !transport) {
      stash_error_and_stop(core);
      return;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != nullptr) PyException_SetTraceback(value, traceback);
    PyObject* result = PyObject_CallMethod(transport.get(), "_fatal_error", "Os", value, message);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    if (result == nullptr) {
      stash_error_and_stop(core);
    } else {
      Py_DECREF(result);
    }
  }

  void call(PyObject* name, const char* message) {
    if (!protocol) return;
    PyObject* result = PyObject_CallMethodNoArgs(protocol.get(), name);
    if (result == nullptr) return report(message);
    Py_DECREF(result);
  }

  void connection_made() {
    if (!protocol) return;
    PyObject* result =
        PyObject_CallMethodOneArg(protocol.get(), names.connection_made, transport.get());
    if (result == nullptr) return report("Fatal error: protocol.connection_made() call failed.");
    Py_DECREF(result);
  }

  bool eof_received() {
    if (!protocol) return false;
    PyObject* result = PyObject_CallMethodNoArgs(protocol.get(), names.eof_received);
    if (result == nullptr) {
      report("Fatal error: protocol.eof_received() call failed.");
      return false;
    }
    int keep_open = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (keep_open < 0) {
      report("Fatal error: protocol.eof_received() call failed.");
      return false;
    }
    return keep_open == 1;
  }

  // The Python transport calls the protocol's connection_lost and lets go of
  // its socket object; then the cycle through this adapter is cut.
  void connection_lost(std::error_code error) {
    if (!transport) return;
    PyRef exc = PyRef::steal(os_error_or_none(error.value()));
    PyObject* result =
        exc ? PyObject_CallMethodOneArg(transport.get(), names.on_connection_lost, exc.get())
            : nullptr;
    if (result == nullptr) {
      report("Exception in protocol.connection_lost()");
    } else {
      Py_DECREF(result);
    }
    protocol.reset();
    transport.reset();
  }
};

// A read that exactly fills the reader's buffer -- a power of two of at least
// 4 KiB: the io_uring backend's provided buffers hold 16 KiB, the epoll
// reader's buffer 256 KiB -- says that more bytes were probably waiting.
bool filled_a_buffer(std::size_t size) { return size >= 4096 && (size & (size - 1)) == 0; }

// An asyncio.Protocol: data_received gets bytes. Reads that filled the
// reader's buffer are gathered and handed over as one bytes object when the
// socket is drained (a shorter read), before any other event of this
// connection, or at the latest from the ready queue: with io_uring's 16 KiB
// receive buffers a 100 KiB message would otherwise cost seven Python
// data_received calls (and an echo seven sends). asyncio promises no chunk
// boundaries; bytes gathered when the transport is closed from elsewhere are
// dropped, as asyncio's close() leaves unread bytes unread.
class PyProtocol final : public Protocol {
 public:
  explicit PyProtocol(Bridge bridge) : bridge_(std::move(bridge)) {}
  void connection_made(Transport& made) override {
    reader_ = &made;
    bridge_.attach(made);
    bridge_.connection_made();
  }
  void data_received(std::string_view data) override {
    if (!bridge_.protocol) return;
    if (filled_a_buffer(data.size())) {
      gathered_.append(data);
      if (!flush_scheduled_) schedule_flush();
      return;
    }
    if (gathered_.empty()) return deliver(data);
    gathered_.append(data);
    flush();
  }
  bool eof_received() override {
    flush();
    return bridge_.eof_received();
  }
  void connection_lost(std::error_code error) override {
    flush();
    bridge_.connection_lost(error);
  }
  void pause_writing() override {
    bridge_.call(names.pause_writing, "protocol.pause_writing() failed");
  }
  void resume_writing() override {
    bridge_.call(names.resume_writing, "protocol.resume_writing() failed");
  }
  /// The transport is about to take another protocol: gathered reads go to this one first.
  void hand_over_gathered() { flush(); }

 private:
  void deliver(std::string_view data) {
    PyObject* bytes = PyBytes_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size()));
    PyObject* result = bytes == nullptr ? nullptr
                                        : PyObject_CallMethodOneArg(bridge_.protocol.get(),
                                                                    names.data_received, bytes);
    Py_XDECREF(bytes);
    if (result == nullptr)
      return bridge_.report("Fatal error: protocol.data_received() call failed.");
    Py_DECREF(result);
  }

  void flush() {
    if (gathered_.empty()) return;
    if (!bridge_.protocol) return gathered_.clear();
    PyObject* bytes =
        PyBytes_FromStringAndSize(gathered_.data(), static_cast<Py_ssize_t>(gathered_.size()));
    gathered_.clear();  // keeps its capacity for the next message
    PyObject* result = bytes == nullptr ? nullptr
                                        : PyObject_CallMethodOneArg(bridge_.protocol.get(),
                                                                    names.data_received, bytes);
    Py_XDECREF(bytes);
    if (result == nullptr)
      return bridge_.report("Fatal error: protocol.data_received() call failed.");
    Py_DECREF(result);
  }

  void schedule_flush() {
    if (!alive_) alive_ = std::make_shared<PyProtocol*>(this);
    flush_scheduled_ = true;
    bridge_.core->loop->call_soon([alive = std::weak_ptr<PyProtocol*>(alive_)] {
      auto self = alive.lock();
      if (!self) return;
      PyProtocol* protocol = *self;
      protocol->flush_scheduled_ = false;
      // Closed from elsewhere meanwhile: asyncio would not have read these.
      if (protocol->reader_ != nullptr && protocol->reader_->is_closing()) {
        protocol->gathered_.clear();
        return;
      }
      protocol->flush();
    });
  }

  Bridge bridge_;
  Transport* reader_ = nullptr;  // the transport that called connection_made (owns this)
  std::string gathered_;         // reads not handed over yet
  bool flush_scheduled_ = false;
  std::shared_ptr<PyProtocol*> alive_;  // the scheduled flush's way to know this still exists
};

// A BufferedProtocol: reads land in the buffer get_buffer() returns. The
// buffer is held (Py_buffer) from get_buffer until buffer_updated or the next
// get_buffer, so the object cannot be resized under the read.
class PyBufferedProtocol final : public BufferedProtocol {
 public:
  explicit PyBufferedProtocol(Bridge bridge) : bridge_(std::move(bridge)) {}
  ~PyBufferedProtocol() override { release_view(); }
  void connection_made(Transport& made) override {
    bridge_.attach(made);
    bridge_.connection_made();
  }
  std::span<std::byte> get_buffer(std::size_t size_hint) override {
    release_view();
    if (!bridge_.protocol) return {};
    PyObject* hint = PyLong_FromSize_t(size_hint);
    PyObject* buffer =
        hint == nullptr ? nullptr
                        : PyObject_CallMethodOneArg(bridge_.protocol.get(), names.get_buffer, hint);
    Py_XDECREF(hint);
    if (buffer == nullptr) {
      bridge_.report("Fatal error: protocol.get_buffer() call failed.");
      return {};
    }
    int failed = PyObject_GetBuffer(buffer, &view_, PyBUF_WRITABLE);
    Py_DECREF(buffer);
    if (failed != 0) {
      bridge_.report("Fatal error: protocol.get_buffer() call failed.");
      return {};
    }
    has_view_ = true;
    return {static_cast<std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
  }
  void buffer_updated(std::size_t bytes) override {
    // Released first: the protocol may resize its bytearray in buffer_updated.
    release_view();
    if (!bridge_.protocol) return;
    PyObject* count = PyLong_FromSize_t(bytes);
    PyObject* result = count == nullptr ? nullptr
                                        : PyObject_CallMethodOneArg(bridge_.protocol.get(),
                                                                    names.buffer_updated, count);
    Py_XDECREF(count);
    if (result == nullptr) {
      return bridge_.report("Fatal error: protocol.buffer_updated() call failed.");
    }
    Py_DECREF(result);
  }
  bool eof_received() override { return bridge_.eof_received(); }
  void connection_lost(std::error_code error) override {
    release_view();
    bridge_.connection_lost(error);
  }
  void pause_writing() override {
    bridge_.call(names.pause_writing, "protocol.pause_writing() failed");
  }
  void resume_writing() override {
    bridge_.call(names.resume_writing, "protocol.resume_writing() failed");
  }

 private:
  void release_view() {
    if (has_view_) PyBuffer_Release(&view_);
    has_view_ = false;
  }
  Bridge bridge_;
  Py_buffer view_{};
  bool has_view_ = false;
};

}  // namespace

std::shared_ptr<StreamProtocol> make_protocol_adapter(LoopCoreObject* core, PyObject* protocol,
                                                      PyObject* transport, bool buffered,
                                                      TransportCoreObject* attach_to) {
  Bridge bridge{core, PyRef::borrow(protocol), PyRef::borrow(transport), attach_to};
  if (buffered) return std::make_shared<PyBufferedProtocol>(std::move(bridge));
  return std::make_shared<PyProtocol>(std::move(bridge));
}

namespace {

// ---- StreamTransportCore ---------------------------------------------------------

TransportCoreObject* as_transport(PyObject* self) {
  return reinterpret_cast<TransportCoreObject*>(self);
}

// The core's C++ transport, or null with RuntimeError set: a core made for
// create_connection has none until its connection_made.
Transport* live_transport(PyObject* self) {
  Transport* transport = as_transport(self)->transport.get();
  if (transport == nullptr)
    PyErr_SetString(PyExc_RuntimeError, "the transport is not connected yet");
  return transport;
}

template <class F>
PyObject* guarded(F&& body) {
  try {
    return body();
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
}

PyObject* transport_write(PyObject* self, PyObject* data) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  Py_buffer view;
  if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) != 0) {
    PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.100s'",
                 Py_TYPE(data)->tp_name);
    return nullptr;
  }
  PyObject* result = guarded([&] {
    transport->write(
        std::string_view(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len)));
    Py_RETURN_NONE;
  });
  PyBuffer_Release(&view);
  return result;
}

PyObject* transport_writelines(PyObject* self, PyObject* iterable) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  PyRef list = PyRef::steal(PySequence_List(iterable));
  if (!list) return nullptr;
  Py_ssize_t count = PyList_GET_SIZE(list.get());
  std::vector<Py_buffer> views(static_cast<std::size_t>(count));
  std::vector<std::string_view> pieces;
  Py_ssize_t held = 0;
  PyObject* result = nullptr;
  for (; held < count; ++held) {
    PyObject* item = PyList_GET_ITEM(list.get(), held);
    if (PyObject_GetBuffer(item, &views[held], PyBUF_SIMPLE) != 0) {
      PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.100s'",
                   Py_TYPE(item)->tp_name);
      break;
    }
    pieces.emplace_back(static_cast<const char*>(views[held].buf),
                        static_cast<std::size_t>(views[held].len));
  }
  if (held == count) {
    result = guarded([&] {
      transport->writelines(pieces);
      Py_RETURN_NONE;
    });
  }
  for (Py_ssize_t i = 0; i < held; ++i) PyBuffer_Release(&views[i]);
  return result;
}

#define TULIP_TRANSPORT_VOID(name, call)                  \
  PyObject* transport_##name(PyObject* self, PyObject*) { \
    Transport* transport = live_transport(self);          \
    if (transport == nullptr) return nullptr;             \
    return guarded([&] {                                  \
      transport->call();                                  \
      Py_RETURN_NONE;                                     \
    });                                                   \
  }
TULIP_TRANSPORT_VOID(write_eof, write_eof)
TULIP_TRANSPORT_VOID(close, close)
TULIP_TRANSPORT_VOID(abort, abort)
TULIP_TRANSPORT_VOID(pause_reading, pause_reading)
TULIP_TRANSPORT_VOID(resume_reading, resume_reading)
#undef TULIP_TRANSPORT_VOID

PyObject* transport_is_closing(PyObject* self, PyObject*) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  return PyBool_FromLong(transport->is_closing());
}
PyObject* transport_is_reading(PyObject* self, PyObject*) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  return PyBool_FromLong(transport->is_reading());
}
PyObject* transport_can_write_eof(PyObject* self, PyObject*) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  return PyBool_FromLong(transport->can_write_eof());
}
PyObject* transport_get_write_buffer_size(PyObject* self, PyObject*) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  return PyLong_FromSize_t(transport->get_write_buffer_size());
}
PyObject* transport_get_write_buffer_limits(PyObject* self, PyObject*) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  auto [low, high] = transport->get_write_buffer_limits();
  return Py_BuildValue("(nn)", static_cast<Py_ssize_t>(low), static_cast<Py_ssize_t>(high));
}

// names() -> (sockname, peername): the C++ transport looked both up once when it
// was made, so the Python transport asks the kernel nothing. None when unknown.
PyObject* transport_names(PyObject* self, PyObject*) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  PyRef pair[2];
  const char* keys[2] = {"sockname", "peername"};
  for (int i = 0; i < 2; ++i) {
    std::any value = transport->get_extra_info(keys[i]);
    const auto* address = std::any_cast<SocketAddress>(&value);
    pair[i] = PyRef::steal(address != nullptr ? address_to_python(*address) : Py_NewRef(Py_None));
    if (!pair[i]) return nullptr;
  }
  return PyTuple_Pack(2, pair[0].get(), pair[1].get());
}

// fileno() -> the socket's descriptor while the C++ transport holds it, else -1.
PyObject* transport_fileno(PyObject* self, PyObject*) {
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  std::any value = transport->get_extra_info("socket");
  const int* fd = std::any_cast<int>(&value);
  return PyLong_FromLong(fd != nullptr ? *fd : -1);
}

// set_write_buffer_limits(high, low): None leaves the default, as asyncio.
PyObject* transport_set_write_buffer_limits(PyObject* self, PyObject* const* args,
                                            Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "set_write_buffer_limits(high, low)");
    return nullptr;
  }
  std::optional<std::size_t> limits[2];
  for (int i = 0; i < 2; ++i) {
    if (args[i] == Py_None) continue;
    Py_ssize_t value = PyLong_AsSsize_t(args[i]);
    if (value == -1 && PyErr_Occurred()) return nullptr;
    if (value < 0) {
      PyErr_Format(PyExc_ValueError, "high (%R) must be >= low (%R) must be >= 0", args[0],
                   args[1]);
      return nullptr;
    }
    limits[i] = static_cast<std::size_t>(value);
  }
  Transport* transport = live_transport(self);
  if (transport == nullptr) return nullptr;
  return guarded([&] {
    transport->set_write_buffer_limits(limits[0], limits[1]);
    Py_RETURN_NONE;
  });
}

// set_protocol(protocol, transport, buffered): a new adapter for the new protocol.
PyObject* transport_set_protocol(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "set_protocol(protocol, transport, buffered)");
    return nullptr;
  }
  TransportCoreObject* object = as_transport(self);
  if (live_transport(self) == nullptr) return nullptr;
  // Reads the old protocol has gathered were read before the switch: they are
  // its, as asyncio would have handed them to it already.
  if (auto* old = dynamic_cast<PyProtocol*>(object->transport->get_protocol())) {
    old->hand_over_gathered();
  }
  return guarded([&] {
    object->transport->set_protocol(
        make_protocol_adapter(object->core, args[0], args[1], PyObject_IsTrue(args[2]) == 1));
    Py_RETURN_NONE;
  });
}

void transport_dealloc(PyObject* self) {
  TransportCoreObject* object = as_transport(self);
  std::destroy_at(&object->transport);
  Py_XDECREF(reinterpret_cast<PyObject*>(object->core));
  Py_TYPE(self)->tp_free(self);
}

#define TULIP_FASTCALL(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))
PyMethodDef transport_methods[] = {
    {"write", transport_write, METH_O, "Send bytes (copied if the kernel does not take them)."},
    {"writelines", transport_writelines, METH_O, "Send a sequence of bytes-like objects."},
    {"write_eof", transport_write_eof, METH_NOARGS, "Shut down the write side when flushed."},
    {"can_write_eof", transport_can_write_eof, METH_NOARGS, "True."},
    {"close", transport_close, METH_NOARGS, "Close after flushing."},
    {"abort", transport_abort, METH_NOARGS, "Close now, dropping unsent bytes."},
    {"is_closing", transport_is_closing, METH_NOARGS, "Closing or closed."},
    {"pause_reading", transport_pause_reading, METH_NOARGS, "Stop reading."},
    {"resume_reading", transport_resume_reading, METH_NOARGS, "Read again."},
    {"is_reading", transport_is_reading, METH_NOARGS, "Reading and not closing."},
    {"get_write_buffer_size", transport_get_write_buffer_size, METH_NOARGS, "Unsent bytes."},
    {"get_write_buffer_limits", transport_get_write_buffer_limits, METH_NOARGS, "(low, high)."},
    {"set_write_buffer_limits", TULIP_FASTCALL(transport_set_write_buffer_limits), METH_FASTCALL,
     "Set the flow-control water marks."},
    {"names", transport_names, METH_NOARGS, "(sockname, peername), as socket's."},
    {"fileno", transport_fileno, METH_NOARGS, "The socket's descriptor while open, else -1."},
    {"set_protocol", TULIP_FASTCALL(transport_set_protocol), METH_FASTCALL,
     "Hand the connection to another protocol."},
    {nullptr, nullptr, 0, nullptr}};

// start_stream_transport(loop_core, fd, protocol, transport, buffered) -> core.
// The C++ transport owns `fd` from this call on, success or failure.
PyObject* start_stream_transport(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 5 || !PyObject_TypeCheck(args[0], &LoopCoreType)) {
    PyErr_SetString(PyExc_TypeError,
                    "start_stream_transport(loop_core, fd, protocol, transport, buffered)");
    return nullptr;
  }
  auto* core = reinterpret_cast<LoopCoreObject*>(args[0]);
  int fd = fd_from(args[1]);
  if (fd < 0) return nullptr;
  int buffered = PyObject_IsTrue(args[4]);
  if (buffered < 0) return nullptr;
  if (core->loop == nullptr || core->loop->is_closed()) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return nullptr;
  }
  TransportCoreObject* object = new_transport_core(core);
  if (object == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    try {
      detail::StreamSocket socket{
          fd, make_protocol_adapter(core, args[2], args[3], buffered == 1), nullptr, {}};
      // connection_made is queued now; reading starts after it has run.
      object->transport =
          detail::LoopAccess::backend(*core->loop).start_stream_transport(std::move(socket), [] {});
    } catch (...) {
      Py_DECREF(object);
      throw;
    }
    return reinterpret_cast<PyObject*>(object);
  });
}

PyMethodDef module_functions[] = {
    {"start_stream_transport", TULIP_FASTCALL(start_stream_transport), METH_FASTCALL,
     "Make a tulip transport for a connected stream socket and a Python protocol."},
    {nullptr, nullptr, 0, nullptr}};
#undef TULIP_FASTCALL

}  // namespace

TransportCoreObject* new_transport_core(LoopCoreObject* core) {
  auto* object = PyObject_New(TransportCoreObject, &StreamTransportCoreType);
  if (object == nullptr) return nullptr;
  std::construct_at(&object->transport);
  Py_INCREF(reinterpret_cast<PyObject*>(core));
  object->core = core;
  return object;
}

PyTypeObject StreamTransportCoreType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "tulip._core.StreamTransportCore";
  type.tp_basicsize = sizeof(TransportCoreObject);
  type.tp_flags = Py_TPFLAGS_DEFAULT;
  type.tp_doc = "A tulip C++ stream transport driving a Python protocol.";
  type.tp_dealloc = transport_dealloc;
  type.tp_methods = transport_methods;
  return type;
}();

bool add_stream_transport_types(PyObject* module) {
  if (PyType_Ready(&StreamTransportCoreType) < 0) return false;
  if (PyModule_AddObjectRef(module, "StreamTransportCore",
                            reinterpret_cast<PyObject*>(&StreamTransportCoreType)) < 0) {
    return false;
  }
  return PyModule_AddFunctions(module, module_functions) == 0;
}

}  // namespace tulip::python
