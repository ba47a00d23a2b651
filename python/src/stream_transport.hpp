// Stream transports for Python protocols (tulip._core.StreamTransportCore).
//
// A connected socket becomes a tulip C++ transport (the selector backend's,
// through the backend seam) whose protocol is an adapter calling the Python
// protocol: data_received gets bytes; a BufferedProtocol's get_buffer() buffer
// is filled in place. The Python-side transport (python/tulip/_transport.py,
// an asyncio.Transport) keeps the StreamTransportCore as self._core.
//
// Lifetime: the C++ transport owns the adapter, the adapter owns the Python
// protocol and the Python transport; the Python transport owns the core, which
// holds the C++ transport. The cycle is broken when connection_lost has run:
// the adapter drops its Python references then.
//
// Thread-safety: the loop's thread only, with the GIL held.
#pragma once

#include <memory>

#include "py_ref.hpp"
#include "tulip/protocol.hpp"
#include "tulip/transport.hpp"

namespace tulip::python {

struct LoopCoreObject;

/// tulip._core.StreamTransportCore: the C++ transport the Python transport drives.
struct TransportCoreObject {
  PyObject_HEAD std::shared_ptr<Transport> transport;  // empty until attached
  LoopCoreObject* core;                                // strong reference (a PyObject*)
};

extern PyTypeObject StreamTransportCoreType;

/// A StreamTransportCore with no C++ transport yet (a new reference, or null
/// with an exception set): create_connection's connector makes the transport
/// later, and the adapter from make_protocol_adapter(..., attach_to) attaches it.
TransportCoreObject* new_transport_core(LoopCoreObject* core);

/// The C++ protocol calling the Python `protocol` (data_received gets bytes; a
/// BufferedProtocol, `buffered`, has its buffer filled in place); `transport`
/// is the asyncio.Transport the protocol sees. With `attach_to`, the C++
/// transport that calls connection_made is attached to that core first.
std::shared_ptr<StreamProtocol> make_protocol_adapter(LoopCoreObject* core, PyObject* protocol,
                                                      PyObject* transport, bool buffered,
                                                      TransportCoreObject* attach_to = nullptr);

/// Adds StreamTransportCore and start_stream_transport() to `module`.
bool add_stream_transport_types(PyObject* module);

/// Adds open_connection() and cancel_connection() (stream_connect.cpp) to `module`.
bool add_stream_connect_functions(PyObject* module);

}  // namespace tulip::python
