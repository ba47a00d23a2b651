// address_to_python (see socket_names.hpp).
#include "socket_names.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace tulip::python {

PyObject* address_to_python(const SocketAddress& address) {
  switch (address.family()) {
    case AF_INET: {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(address.data());
      char text[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
      return Py_BuildValue("(si)", text, static_cast<int>(ntohs(v4->sin_port)));
    }
    case AF_INET6: {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.data());
      char text[INET6_ADDRSTRLEN];
      ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
      // As Python's makesockaddr: the flow label in host order, the scope as is.
      return Py_BuildValue("(siII)", text, static_cast<int>(ntohs(v6->sin6_port)),
                           static_cast<unsigned>(ntohl(v6->sin6_flowinfo)),
                           static_cast<unsigned>(v6->sin6_scope_id));
    }
    case AF_UNIX: {
      std::string path = address.path();
      // Linux's abstract names are bytes (they start with a NUL); paths are str.
      if (address.is_abstract()) {
        return PyBytes_FromStringAndSize(path.data(), static_cast<Py_ssize_t>(path.size()));
      }
      return PyUnicode_DecodeFSDefaultAndSize(path.data(), static_cast<Py_ssize_t>(path.size()));
    }
    default:
      Py_RETURN_NONE;
  }
}

}  // namespace tulip::python
