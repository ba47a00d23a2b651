// Socket addresses as the Python values asyncio's transports report.
//
// A tulip::SocketAddress becomes what Python's socket module returns for
// getsockname() / getpeername(): (host, port) for IPv4, (host, port,
// flowinfo, scope_id) for IPv6, the path (str) of a Unix socket, bytes for an
// abstract name, '' for an unnamed one. The C++ transport looks its names up
// once, when it is made; the Python transport reads them from there.
//
// Thread-safety: needs the GIL.
#pragma once

#include "py_ref.hpp"
#include "tulip/socket_address.hpp"

namespace tulip::python {

/// A new reference to the Python form of `address` (None when it is empty),
/// or null with an exception set.
PyObject* address_to_python(const SocketAddress& address);

}  // namespace tulip::python
