"""The asyncio.Transport that Python protocols see on tulip's loop.

The bytes move in tulip's C++ transport (tulip._core.StreamTransportCore,
self._core): write() goes straight to it, and its protocol adapter calls this
protocol's data_received / buffer_updated / eof_received / connection_lost.
This class adds what asyncio defines in Python: the extra info (socket,
sockname, peername), the server's connection count, and the error reporting
of a protocol callback that raised.
"""

import asyncio
import socket
from asyncio import constants, futures, protocols, transports, trsock
from asyncio.log import logger

from . import _core


class SocketTransport(transports._FlowControlMixin, asyncio.Transport):
    """A TCP or Unix stream connection driven by tulip's C++ transport."""

    # loop.start_tls may replace the protocol of this transport with asyncio's
    # SSLProtocol (pause_reading, set_protocol, resume_reading).
    _start_tls_compatible = True
    # loop.sendfile uses asyncio's fallback (file reads written to the
    # transport under flow control); os.sendfile is not wired up yet.
    _sendfile_compatible = constants._SendfileMode.FALLBACK

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        # A _FlowControlMixin (asyncio's sendfile fallback requires one) whose
        # flow control is the C++ transport's: its own __init__ is not run.
        asyncio.BaseTransport.__init__(self, extra)
        self._extra['socket'] = trsock.TransportSocket(sock)
        if sock.family != socket.AF_UNIX and sock.type == socket.SOCK_STREAM:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._loop = loop
        self._sock = sock
        self._protocol = protocol
        self._server = server
        self._lost_exc = None
        if server is not None:
            server._attach()
        # From here the C++ transport owns the descriptor; this socket object
        # lets go of it (detach) before the C++ side closes it.
        self._core = _core.start_stream_transport(
            loop._core, sock.fileno(), protocol, self,
            isinstance(protocol, protocols.BufferedProtocol))
        self._bind_core()
        if waiter is not None:
            # After connection_made, which the C++ transport queued already.
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def _bind_core(self):
        core = self._core
        # The hot methods are the C++ transport's own, with no Python frame.
        self.write = core.write
        self.writelines = core.writelines
        self.is_closing = core.is_closing
        self.is_reading = core.is_reading
        self.pause_reading = core.pause_reading
        self.resume_reading = core.resume_reading
        self.get_write_buffer_size = core.get_write_buffer_size
        self.can_write_eof = core.can_write_eof
        self.abort = core.abort
        self.close = core.close

    # The socket's names are the C++ transport's, looked up once when it was
    # made (sockname, and peername unless the accept or the connect gave it):
    # read from there the first time they are asked for.
    _names_pending = True

    def get_extra_info(self, name, default=None):
        if self._names_pending and (name == 'sockname' or name == 'peername'):
            self._names_pending = False
            sockname, peername = self._core.names()
            self._extra.setdefault('sockname', sockname)
            self._extra.setdefault('peername', peername)
        return self._extra.get(name, default)

    def __repr__(self):
        state = 'closing' if self._core.is_closing() else 'open'
        fd = self._sock.fileno() if self._sock is not None else -1
        return f'<tulip.SocketTransport fd={fd} {state}>'

    @property
    def _protocol_paused(self):
        # asyncio's flag "pause_writing was called and resume_writing not yet",
        # read by its sendfile fallback: the C++ transport pauses the protocol
        # exactly while its buffer is above the high-water mark.
        return self._core.get_write_buffer_size() > self._core.get_write_buffer_limits()[1]

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._core.set_protocol(protocol, self,
                                isinstance(protocol, protocols.BufferedProtocol))

    def write_eof(self):
        self._core.write_eof()

    def get_write_buffer_limits(self):
        return self._core.get_write_buffer_limits()

    def set_write_buffer_limits(self, high=None, low=None):
        if high is not None and low is not None and low > high:
            raise ValueError(f'high ({high!r}) must be >= low ({low!r}) must be >= 0')
        self._core.set_write_buffer_limits(high, low)

    def _fatal_error(self, exc, message='Fatal error on transport'):
        # A protocol callback raised: report it (an OSError only in debug
        # mode, as asyncio) and drop the connection.
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug('%r: %s', self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                'message': message,
                'exception': exc,
                'transport': self,
                'protocol': self._protocol,
            })
        self._force_close(exc)

    def _force_close(self, exc):
        # asyncio's internal API (sslproto uses it): close now, and the
        # protocol's connection_lost gets `exc`.
        if self._lost_exc is None:
            self._lost_exc = exc
        self._core.abort()

    def _on_connection_lost(self, exc):
        # Called once by the C++ transport, which closes the descriptor after.
        if exc is None:
            exc = self._lost_exc
        self._lost_exc = None
        try:
            if self._protocol is not None:
                self._protocol.connection_lost(exc)
        finally:
            if self._sock is not None:
                self._sock.detach()
                self._sock = None
            self._protocol = None
            server, self._server = self._server, None
            if server is not None:
                server._detach()


class ConnectedTransport(SocketTransport):
    """The transport of create_connection's C++ fast path (see _connect.py).

    Made by the protocol factory's call from the C++ connector, around a
    StreamTransportCore whose C++ transport is attached when connection_made
    runs. The socket object of get_extra_info('socket') is made when it is
    first asked for: most clients never ask.
    """

    def __init__(self, loop, protocol, core):
        asyncio.BaseTransport.__init__(self)
        self._loop = loop
        self._sock = None
        self._protocol = protocol
        self._server = None
        self._lost_exc = None
        self._lost = False
        self._core = core
        self._bind_core()

    def __repr__(self):
        state = 'closing' if self._core.is_closing() else 'open'
        return f'<tulip.SocketTransport fd={self._fileno()} {state}>'

    def _fileno(self):
        return -1 if self._lost else self._core.fileno()

    def get_extra_info(self, name, default=None):
        if name == 'socket' and 'socket' not in self._extra:
            fd = self._fileno()
            if fd >= 0:
                # Shares the C++ transport's descriptor: detached, not closed,
                # when the connection is lost.
                self._sock = socket.socket(fileno=fd)
                self._sock.setblocking(False)
                self._extra['socket'] = trsock.TransportSocket(self._sock)
            else:
                # Asked for after the connection is gone: a closed socket, as
                # asyncio's transport keeps.
                closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                closed.close()
                self._extra['socket'] = trsock.TransportSocket(closed)
        return super().get_extra_info(name, default)

    def _on_connection_lost(self, exc):
        # The descriptor stays open through the protocol's connection_lost.
        try:
            super()._on_connection_lost(exc)
        finally:
            self._lost = True
