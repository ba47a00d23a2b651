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

#include "py_ref.hpp"

namespace tulip::python {

extern PyTypeObject StreamTransportCoreType;

/// Adds StreamTransportCore and start_stream_transport() to `module`.
bool add_stream_transport_types(PyObject* module);

}  // namespace tulip::python
