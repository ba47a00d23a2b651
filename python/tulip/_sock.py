"""The loop.sock_* methods on tulip's descriptor watches.

Each operation is tried at once; if the socket is not ready it waits for
readiness with add_reader/add_writer (tulip's C++ watches) and tries again.
A cancelled operation stops watching. The socket must be non-blocking, as
asyncio requires.
"""

import socket
from asyncio import futures


class SockMixin:
    def _check_sock(self, sock):
        if sock.gettimeout() != 0:
            raise ValueError('the socket must be non-blocking')

    async def _sock_wait(self, fd, watch_read, attempt):
        """Runs attempt() until it returns (not raising BlockingIOError)."""
        while True:
            try:
                return attempt()
            except (BlockingIOError, InterruptedError):
                pass
            await self._sock_ready(fd, watch_read)

    def _sock_ready(self, fd, watch_read):
        """A Future done when fd is readable (or writable); the watch ends with it."""
        waiter = self.create_future()
        add = self._add_reader if watch_read else self._add_writer
        remove = self._remove_reader if watch_read else self._remove_writer
        handle = add(fd, futures._set_result_unless_cancelled, waiter, None)

        def done(_):
            # Cancelled Handle: another operation took the descriptor over
            # since; its watch must stay.
            if not handle.cancelled():
                remove(fd)

        waiter.add_done_callback(done)
        return waiter

    async def sock_recv(self, sock, n):
        self._check_sock(sock)
        return await self._sock_wait(sock.fileno(), True, lambda: sock.recv(n))

    async def sock_recv_into(self, sock, buf):
        self._check_sock(sock)
        return await self._sock_wait(sock.fileno(), True, lambda: sock.recv_into(buf))

    async def sock_recvfrom(self, sock, bufsize):
        self._check_sock(sock)
        return await self._sock_wait(sock.fileno(), True, lambda: sock.recvfrom(bufsize))

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        self._check_sock(sock)
        if not nbytes:
            nbytes = len(buf)
        return await self._sock_wait(sock.fileno(), True,
                                     lambda: sock.recvfrom_into(buf, nbytes))

    async def sock_sendall(self, sock, data):
        self._check_sock(sock)
        view = memoryview(data).cast('B')
        sent = 0
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            pass
        while sent < len(view):
            sent += await self._sock_wait(sock.fileno(), False,
                                          lambda: sock.send(view[sent:]))

    async def sock_sendto(self, sock, data, address):
        self._check_sock(sock)
        return await self._sock_wait(sock.fileno(), False, lambda: sock.sendto(data, address))

    async def sock_connect(self, sock, address):
        self._check_sock(sock)
        if sock.family == socket.AF_INET or (
                hasattr(socket, 'AF_INET6') and sock.family == socket.AF_INET6):
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto, loop=self)
            _, _, _, _, address = resolved[0]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        await self._sock_ready(sock.fileno(), False)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error != 0:
            raise OSError(error, f'Connect call failed {address}')

    async def sock_accept(self, sock):
        self._check_sock(sock)

        def attempt():
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address

        return await self._sock_wait(sock.fileno(), True, attempt)
