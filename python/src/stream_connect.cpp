// tulip._core.open_connection: create_connection to a numeric host in one call.
//
// asyncio's create_connection is Python (address checks, socket(), sock_connect
// on the loop's watches, then the transport and a waiter future). For a host
// that is already an IP address -- the common client case -- tulip.EventLoop
// hands the whole attempt to tulip's C++ connector instead: it makes the
// socket (TCP_NODELAY set), connects without blocking, and starts the C++
// transport knowing its peer. Python code runs twice: the protocol factory
// (which also makes the asyncio.Transport around a StreamTransportCore whose
// C++ transport is attached at connection_made) and the future's completion.
//
// asyncio's semantics kept: the protocol is made only once connected; a
// failed connect raises OSError(errno, "Connect call failed <address>") (so
// ConnectionRefusedError for a refused one); an exception from the protocol
// factory is raised as is; cancelling the caller stops the attempt and closes
// the socket (cancel_connection), and a connection completed for a caller
// that already gave up is closed.
//
// Thread-safety: the loop's thread, with the GIL held (the connector's
// callbacks run from the loop, which holds the GIL outside its poll).
#include <exception>
#include <memory>
#include <string>
#include <system_error>

#include "loop_core.hpp"
#include "py_ref.hpp"
#include "stream_transport.hpp"
#include "tulip/connection.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::python {
namespace {

// The protocol factory raised: its Python exception is kept in the attempt's
// state and this C++ exception only carries the failure through the connector.
struct PythonFactoryFailed : std::exception {
  const char* what() const noexcept override { return "the protocol factory raised"; }
};

// What the connector's two callbacks share.
struct Attempt {
  LoopCoreObject* core;  // held by `core_ref`
  PyRef core_ref;
  PyRef protocol_factory;
  PyRef make_transport;  // (protocol, core) -> (asyncio transport, is_buffered_protocol)
  PyRef future;
  PyRef address;  // the (host, port[, flowinfo, scope_id]) connected to, for the error
  PyRef transport;
  PyRef protocol;
  PyRef error;  // the factory's exception

  void keep_python_error() {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != nullptr) PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    error = PyRef::steal(value);
  }

  // Runs once connected: the Python protocol, its transport, the adapter.
  std::shared_ptr<StreamProtocol> make_protocol() {
    PyRef made_protocol = PyRef::steal(PyObject_CallNoArgs(protocol_factory.get()));
    if (!made_protocol) fail_from_python();
    PyRef transport_core = PyRef::steal(reinterpret_cast<PyObject*>(new_transport_core(core)));
    if (!transport_core) fail_from_python();
    PyRef made = PyRef::steal(PyObject_CallFunctionObjArgs(
        make_transport.get(), made_protocol.get(), transport_core.get(), nullptr));
    if (!made) fail_from_python();
    if (!PyTuple_Check(made.get()) || PyTuple_GET_SIZE(made.get()) != 2) {
      PyErr_SetString(PyExc_TypeError, "make_transport must return (transport, buffered)");
      fail_from_python();
    }
    int buffered = PyObject_IsTrue(PyTuple_GET_ITEM(made.get(), 1));
    if (buffered < 0) fail_from_python();
    transport = PyRef::borrow(PyTuple_GET_ITEM(made.get(), 0));
    protocol = made_protocol;
    return make_protocol_adapter(core, protocol.get(), transport.get(), buffered == 1,
                                 reinterpret_cast<TransportCoreObject*>(transport_core.get()));
  }

  [[noreturn]] void fail_from_python() {
    keep_python_error();
    throw PythonFactoryFailed();
  }

  bool caller_gave_up() {
    PyRef done = PyRef::steal(PyObject_CallMethod(future.get(), "done", nullptr));
    if (!done) {
      PyErr_WriteUnraisable(future.get());
      return true;
    }
    return done.get() == Py_True;
  }

  // The connector finished: the future gets (transport, protocol) or the error.
  void complete(std::exception_ptr failure, const std::shared_ptr<Transport>& made) {
    if (caller_gave_up()) {
      if (made) made->close();  // as asyncio: no connection left open for no one
      return;
    }
    PyRef outcome;
    const char* method = "set_result";
    if (!failure) {
      outcome = PyRef::steal(PyTuple_Pack(2, transport.get(), protocol.get()));
    } else {
      method = "set_exception";
      outcome = error ? error : exception_for(failure);
    }
    // One argument, even when it is the (transport, protocol) tuple.
    PyRef name = PyRef::steal(PyUnicode_FromString(method));
    PyRef result =
        outcome && name
            ? PyRef::steal(PyObject_CallMethodOneArg(future.get(), name.get(), outcome.get()))
            : PyRef();
    if (!result) PyErr_WriteUnraisable(future.get());
    transport.reset();
    protocol.reset();
    error.reset();
  }

  // The connect failed: the OSError asyncio's sock_connect raises.
  PyRef exception_for(std::exception_ptr failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::system_error& e) {
      PyRef message = PyRef::steal(PyUnicode_FromFormat("Connect call failed %R", address.get()));
      if (!message) return fetch_error();
      return PyRef::steal(
          PyObject_CallFunction(PyExc_OSError, "iO", e.code().value(), message.get()));
    } catch (...) {
      set_error_from_current_exception();
      return fetch_error();
    }
  }

  static PyRef fetch_error() {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != nullptr) PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return PyRef::steal(value);
  }
};

using Cancellation = std::weak_ptr<detail::CancellableOperation>;

void free_cancellation(PyObject* capsule) {
  delete static_cast<Cancellation*>(PyCapsule_GetPointer(capsule, "tulip.connect"));
}

// open_connection(loop_core, host, port, family, address, protocol_factory,
//                 make_transport, future) -> a handle for cancel_connection.
PyObject* open_connection(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 8 || !PyObject_TypeCheck(args[0], &LoopCoreType) || !PyUnicode_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError,
                    "open_connection(loop_core, host, port, family, address, protocol_factory, "
                    "make_transport, future)");
    return nullptr;
  }
  auto* core = reinterpret_cast<LoopCoreObject*>(args[0]);
  Py_ssize_t host_size = 0;
  const char* host = PyUnicode_AsUTF8AndSize(args[1], &host_size);
  if (host == nullptr) return nullptr;
  long port = PyLong_AsLong(args[2]);
  if (port == -1 && PyErr_Occurred()) return nullptr;
  long family = PyLong_AsLong(args[3]);
  if (family == -1 && PyErr_Occurred()) return nullptr;
  if (port <= 0 || port > 65535) {
    PyErr_Format(PyExc_OverflowError, "port must be 1-65535, not %ld", port);
    return nullptr;
  }
  if (core->loop == nullptr || core->loop->is_closed()) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return nullptr;
  }
  auto attempt = std::make_shared<Attempt>();
  attempt->core = core;
  attempt->core_ref = PyRef::borrow(args[0]);
  attempt->address = PyRef::borrow(args[4]);
  attempt->protocol_factory = PyRef::borrow(args[5]);
  attempt->make_transport = PyRef::borrow(args[6]);
  attempt->future = PyRef::borrow(args[7]);
  ConnectOptions options;
  options.family = static_cast<int>(family);
  detail::ConnectCompletion completion;
  completion.done = [attempt](std::exception_ptr failure, std::shared_ptr<Transport> made,
                              std::shared_ptr<StreamProtocol>) {
    attempt->complete(std::move(failure), made);
  };
  completion.cancelled = [attempt] { return attempt->caller_gave_up(); };
  try {
    Cancellation cancellation = detail::open_connection(
        *core->loop, [attempt] { return attempt->make_protocol(); },
        std::string(host, static_cast<std::size_t>(host_size)), static_cast<std::uint16_t>(port),
        std::move(options), std::move(completion));
    auto* kept = new Cancellation(std::move(cancellation));
    PyObject* capsule = PyCapsule_New(kept, "tulip.connect", free_cancellation);
    if (capsule == nullptr) delete kept;
    return capsule;
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
}

// cancel_connection(handle): the caller gave up; the socket is closed now.
PyObject* cancel_connection(PyObject*, PyObject* capsule) {
  auto* cancellation = static_cast<Cancellation*>(PyCapsule_GetPointer(capsule, "tulip.connect"));
  if (cancellation == nullptr) return nullptr;
  if (auto operation = cancellation->lock()) operation->cancel();
  Py_RETURN_NONE;
}

#define TULIP_FASTCALL(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))
PyMethodDef module_functions[] = {
    {"open_connection", TULIP_FASTCALL(open_connection), METH_FASTCALL,
     "Connect to a numeric host with tulip's connector; completes `future`."},
    {"cancel_connection", cancel_connection, METH_O, "Stop an open_connection attempt."},
    {nullptr, nullptr, 0, nullptr}};
#undef TULIP_FASTCALL

}  // namespace

bool add_stream_connect_functions(PyObject* module) {
  return PyModule_AddFunctions(module, module_functions) == 0;
}

}  // namespace tulip::python
