"""create_connection to a numeric host: one call into tulip's C++ connector.

asyncio's create_connection is Python from end to end: the address checks,
socket(), sock_connect on the loop's watches, the transport and its waiter.
For the common client case -- a host that is already an IP address, no TLS,
no socket or local address of the caller's -- the whole attempt is tulip's
C++ connector's (socket, TCP_NODELAY, the non-blocking connect, the transport
with its peer known); Python code runs only in the protocol factory and when
the connection is made. Every other call is asyncio's own code, unchanged
(name resolution, several addresses and Happy Eyeballs, ssl=, sock=,
local_addr=, debug mode's logging).
"""

import socket
from asyncio import base_events, protocols

from . import _core
from ._transport import ConnectedTransport

_TCP_FAMILIES = (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)

# asyncio's _ipaddr_info (inet_pton per family, in Python) costs more than the
# rest of the call: its answers for the hosts a program connects to again and
# again are kept (a pure function of its arguments; bounded, cleared when full).
_numeric_targets = {}
_NUMERIC_TARGETS_KEPT = 256


class ConnectMixin:
    """tulip.EventLoop's create_connection."""

    async def create_connection(self, protocol_factory, host=None, port=None, *, ssl=None,
                                family=0, proto=0, flags=0, sock=None, local_addr=None,
                                server_hostname=None, ssl_handshake_timeout=None,
                                ssl_shutdown_timeout=None, happy_eyeballs_delay=None,
                                interleave=None):
        target = None
        if (not ssl and sock is None and local_addr is None
                and server_hostname is None and ssl_handshake_timeout is None
                and ssl_shutdown_timeout is None and not flags and not self._debug
                and type(host) is str and family in _TCP_FAMILIES
                and proto in (0, socket.IPPROTO_TCP)):
            # One address, numeric: nothing to resolve, no addresses to interleave.
            key = (host, port, family, proto) if type(port) is int else None
            target = _numeric_targets.get(key)
            if target is None:
                target = base_events._ipaddr_info(host, port, family, socket.SOCK_STREAM, proto)
                if target is not None and key is not None:
                    if len(_numeric_targets) >= _NUMERIC_TARGETS_KEPT:
                        _numeric_targets.clear()
                    _numeric_targets[key] = target
        if target is None or not 0 < target[4][1] < 65536:
            return await super().create_connection(
                protocol_factory, host, port, ssl=ssl, family=family, proto=proto, flags=flags,
                sock=sock, local_addr=local_addr, server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
                happy_eyeballs_delay=happy_eyeballs_delay, interleave=interleave)
        address = target[4]
        connected = self.create_future()
        attempt = _core.open_connection(self._core, address[0], address[1], target[0], address,
                                        protocol_factory, self._make_connected_transport,
                                        connected)
        try:
            return await connected
        except BaseException:
            # Cancelled (asyncio.wait_for, a task's cancel): the socket goes now;
            # a connection made for a caller that has gone is closed.
            _core.cancel_connection(attempt)
            if connected.done() and not connected.cancelled() and connected.exception() is None:
                connected.result()[0].close()
            raise

    def _make_connected_transport(self, protocol, core):
        return (ConnectedTransport(self, protocol, core),
                isinstance(protocol, protocols.BufferedProtocol))
