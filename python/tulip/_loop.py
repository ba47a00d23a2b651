"""tulip.EventLoop: asyncio's event loop API on tulip's C++ loop.

The scheduling core -- the ready queue, the timer heap, the poll, the
descriptor watches and the transports -- is tulip's C++ EventLoop (the
extension tulip._core). Everything asyncio defines once for every loop
(futures, tasks, the exception handler, executors, name lookup, servers,
create_connection's address handling, async generators) is asyncio's own
BaseEventLoop, so it behaves exactly as asyncio's.

A loop is used from one thread at a time, as asyncio's; only
call_soon_threadsafe may be called from other threads.
"""

import errno
import os
import sys
import threading
from asyncio import base_events, events, sslproto, unix_events

from . import _core
from ._asyncio_transports import AsyncioTransportsMixin
from ._connect import ConnectMixin
from ._handles import Handle, TimerHandle
from ._signals import SignalMixin
from ._sock import SockMixin
from ._transport import SocketTransport


class EventLoop(SignalMixin, SockMixin, AsyncioTransportsMixin, ConnectMixin,
                base_events.BaseEventLoop):
    """An asyncio event loop whose core is tulip's C++ EventLoop."""

    def __init__(self):
        super().__init__()
        try:
            self._core = _core.LoopCore(self, _backend())
        except ValueError as e:
            self._closed = True  # nothing to close (BaseEventLoop.__del__ asks)
            raise ValueError(f'TULIP_BACKEND: {e}') from None
        self._readers = {}
        self._writers = {}
        # The clock is the C++ loop's (CLOCK_MONOTONIC, as time.monotonic()).
        self.time = self._core.time
        self._init_signals()
        self._init_asyncio_transports()
        self._select_scheduling()

    def set_debug(self, enabled):
        super().set_debug(enabled)
        if hasattr(self, '_core'):
            self._select_scheduling()

    def _select_scheduling(self):
        # Outside debug mode call_soon/call_later/call_at are the C functions
        # making tulip._core Handles (and create_task, with no task factory, a
        # C function making asyncio's Task); in debug mode the methods below and
        # BaseEventLoop's, with asyncio's Handles (source tracebacks) and its
        # thread and callback checks.
        if self._debug:
            for name in ('call_soon', 'call_later', 'call_at', 'create_task'):
                self.__dict__.pop(name, None)
        else:
            self.call_soon = self._core.fast_call_soon
            self.call_later = self._core.fast_call_later
            self.call_at = self._core.fast_call_at
            # create_task without a task factory: asyncio.Task made in C.
            if self._task_factory is None:
                self.create_task = self._core.fast_create_task
            else:
                self.__dict__.pop('create_task', None)

    def set_task_factory(self, factory):
        super().set_task_factory(factory)
        if hasattr(self, '_core'):
            self._select_scheduling()

    # ---- Scheduling ---------------------------------------------------------

    def call_soon(self, callback, *args, context=None):
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, 'call_soon')
        handle = Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._core.call_soon(handle)
        return handle

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError('delay must not be None')
        timer = self.call_at(self.time() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError('when cannot be None')
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, 'call_at')
        timer = TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        timer._tulip_timer = self._core.call_at(when, timer)
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle):
        # Called by TimerHandle.cancel(): drop it from the C++ heap at once, so
        # schedule/cancel churn does not keep dead entries.
        timer = getattr(handle, '_tulip_timer', None)
        if timer is not None:
            timer.cancel()

    def call_soon_threadsafe(self, callback, *args, context=None):
        self._check_closed()
        if self._debug:
            self._check_callback(callback, 'call_soon_threadsafe')
        handle = (Handle if self._debug else events.Handle)(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._core.call_soon_threadsafe(handle)
        return handle

    def _write_to_self(self):
        # asyncio's loops wake themselves through a self-pipe; tulip's
        # call_soon_threadsafe wakes the C++ loop itself.
        pass

    def _process_events(self, event_list):
        pass

    # ---- Running ------------------------------------------------------------

    def run_forever(self):
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        wakeup_installed = self._install_wakeup_fd()
        try:
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            events._set_running_loop(self)
            self._core.run_forever()
        finally:
            self._stopping = False
            self._thread_id = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)
            if wakeup_installed:
                self._remove_wakeup_fd()

    def stop(self):
        self._stopping = True
        self._core.stop()

    def close(self):
        if self.is_running():
            raise RuntimeError('Cannot close a running event loop')
        if self._closed:
            return
        self._close_signals()
        super().close()
        # Pending callbacks are dropped; transports still open get
        # connection_lost (ConnectionAbortedError), as tulip's C++ loop does.
        self._core.close()

    # ---- Descriptors --------------------------------------------------------

    def add_reader(self, fd, callback, *args):
        return self._watch(fd, callback, args, self._readers, self._core.add_reader)

    def remove_reader(self, fd):
        return self._unwatch(fd, self._readers, self._core.remove_reader)

    def add_writer(self, fd, callback, *args):
        return self._watch(fd, callback, args, self._writers, self._core.add_writer)

    def remove_writer(self, fd):
        return self._unwatch(fd, self._writers, self._core.remove_writer)

    def _watch(self, fd, callback, args, handles, add):
        self._check_closed()
        fileno = _fileobj_to_fd(fd)
        # Timed (the slow-callback warning) when made in debug mode; outside it
        # asyncio's plain Handle, so a readiness event costs no extra frame.
        handle = (Handle if self._debug else events.Handle)(callback, args, self, None)
        add(fileno, handle)
        # A new callback for the same descriptor replaces the old one, whose
        # Handle is cancelled (as asyncio's): sock_* waiters rely on it.
        previous = handles.get(fileno)
        handles[fileno] = handle
        if previous is not None:
            previous.cancel()
        return handle

    def _unwatch(self, fd, handles, remove):
        if self.is_closed():
            return False
        fileno = _fileobj_to_fd(fd)
        handle = handles.pop(fileno, None)
        if handle is not None:
            handle.cancel()
        return remove(fileno)

    # asyncio's own code (sslproto, streams, the servers) uses these names.
    _add_reader = add_reader
    _remove_reader = remove_reader
    _add_writer = add_writer
    _remove_writer = remove_writer

    # ---- Transports ---------------------------------------------------------

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *,
                            server_side=False, server_hostname=None, extra=None, server=None,
                            ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
                            call_connection_made=True):
        # TLS is asyncio's own sslproto over a tulip transport.
        ssl_protocol = sslproto.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=call_connection_made)
        SocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _start_serving(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100,
                       ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        self._add_reader(sock.fileno(), self._accept_connection, protocol_factory, sock,
                         sslcontext, server, backlog, ssl_handshake_timeout,
                         ssl_shutdown_timeout)

    def _stop_serving(self, sock):
        self._remove_reader(sock.fileno())
        sock.close()

    def _accept_connection(self, protocol_factory, sock, sslcontext, server, backlog,
                           ssl_handshake_timeout, ssl_shutdown_timeout):
        # Up to `backlog` connections per readiness event, as asyncio.
        for _ in range(backlog):
            try:
                conn, addr = sock.accept()
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: stop accepting for a
                    # moment rather than spin on the listening socket.
                    self.call_exception_handler({
                        'message': 'socket.accept() out of system resource',
                        'exception': exc,
                        'socket': base_events.trsock.TransportSocket(sock),
                    })
                    self._remove_reader(sock.fileno())
                    self.call_later(base_events.constants.ACCEPT_RETRY_DELAY,
                                    self._start_serving, protocol_factory, sock, sslcontext,
                                    server, backlog, ssl_handshake_timeout, ssl_shutdown_timeout)
                    return
                raise
            extra = {'peername': addr}
            self.create_task(self._accept_connection2(
                protocol_factory, conn, extra, sslcontext, server, ssl_handshake_timeout,
                ssl_shutdown_timeout))

    async def _accept_connection2(self, protocol_factory, conn, extra, sslcontext, server,
                                  ssl_handshake_timeout, ssl_shutdown_timeout):
        protocol = None
        transport = None
        try:
            protocol = protocol_factory()
            waiter = self.create_future()
            if sslcontext:
                transport = self._make_ssl_transport(
                    conn, protocol, sslcontext, waiter=waiter, server_side=True, extra=extra,
                    server=server, ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout)
            else:
                transport = self._make_socket_transport(conn, protocol, waiter=waiter,
                                                        extra=extra, server=server)
            try:
                await waiter
            except BaseException:
                transport.close()
                raise
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if self._debug:
                context = {'message': 'Error on transport creation for incoming connection',
                           'exception': exc}
                if protocol is not None:
                    context['protocol'] = protocol
                if transport is not None:
                    context['transport'] = transport
                self.call_exception_handler(context)

    # Unix stream sockets: asyncio's own address handling over this loop's
    # sock_connect, _start_serving and transports.
    create_unix_connection = unix_events._UnixSelectorEventLoop.create_unix_connection
    create_unix_server = unix_events._UnixSelectorEventLoop.create_unix_server


def _backend():
    # TULIP_BACKEND chooses, as for the C++ loop. Without it, epoll: measured
    # for Python servers and clients, the io_uring backend costs more where the
    # bytes are many (its 16 KiB receive buffers, 256 of them used in turn,
    # make the kernel's copy into them cache-cold: 100 KiB echo 70-85 against
    # 50-65 us of server CPU per request) and per short connection (a shutdown
    # and two io_uring_enter calls); see docs/python.md.
    return os.environ.get('TULIP_BACKEND') or 'epoll'


def _fileobj_to_fd(fileobj):
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f'Invalid file object: {fileobj!r}') from None
    if fd < 0:
        raise ValueError(f'Invalid file descriptor: {fd}')
    return fd
