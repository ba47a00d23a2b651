"""create_connection on tulip's loop beside asyncio's: the C++ fast path for a
numeric host (tulip._connect) and asyncio's own code for everything else must
behave the same -- results, extra info, and errors (a refused connection, a
host that does not resolve, several addresses of which the first fails, a
protocol factory that raises) -- and a cancelled attempt leaves nothing open.

Run with the package on PYTHONPATH (ctest sets it to <build>/python).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import unittest

import tulip
from tulip._transport import ConnectedTransport


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Client(asyncio.Protocol):
    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.made = self.loop.create_future()
        self.received = bytearray()
        self.lost = self.loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data):
        self.received += data
        if len(self.received) >= 12:
            self.transport.close()

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def unused_port(host='127.0.0.1'):
    """A port bound (so no one else takes it) but not listening: connects are refused."""
    sock = socket.socket()
    sock.bind((host, 0))
    return sock, sock.getsockname()[1]


class ConnectCases:
    def new_loop(self):
        raise NotImplementedError

    def setUp(self):
        self.loop = self.new_loop()
        self.errors = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))

    def tearDown(self):
        self.loop.close()
        self.assertEqual(self.errors, [])

    def run_async(self, coro, timeout=10):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    async def echo_server(self, host='127.0.0.1'):
        server = await self.loop.create_server(Echo, host, 0)
        return server, server.sockets[0].getsockname()[1]

    def test_numeric_host_echo_and_extra_info(self):
        async def main():
            server, port = await self.echo_server()
            # The port as a string, as asyncio accepts it.
            transport, protocol = await self.loop.create_connection(Client, '127.0.0.1', str(port))
            self.assertIs(await protocol.made, transport)
            self.assertIsInstance(transport, asyncio.Transport)
            self.assertIs(transport.get_protocol(), protocol)
            peername = transport.get_extra_info('peername')
            sockname = transport.get_extra_info('sockname')
            self.assertEqual(peername, ('127.0.0.1', port))
            sock = transport.get_extra_info('socket')
            self.assertEqual(sock.getsockname(), sockname)
            self.assertEqual(sock.getpeername(), peername)
            self.assertEqual(sock.gettimeout(), 0.0)
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
            transport.write(b'Hello World!')
            self.assertIsNone(await protocol.lost)
            self.assertEqual(bytes(protocol.received), b'Hello World!')
            self.assertTrue(transport.is_closing())
            self.assertEqual(transport.get_extra_info('peername'), peername)
            self.assertEqual(transport.get_extra_info('missing', 'default'), 'default')
            server.close()
            await server.wait_closed()
            return transport

        return self.run_async(main())

    def test_socket_asked_for_only_after_close(self):
        async def main():
            server, port = await self.echo_server()
            transport, protocol = await self.loop.create_connection(Client, '127.0.0.1', port)
            transport.write(b'Hello World!')
            await protocol.lost
            self.assertEqual(transport.get_extra_info('socket').fileno(), -1)
            server.close()
            await server.wait_closed()

        self.run_async(main())

    def test_ipv6_numeric_host(self):
        if not socket.has_ipv6:
            self.skipTest('no IPv6')

        async def main():
            try:
                server, port = await self.echo_server('::1')
            except OSError as e:
                self.skipTest(f'no ::1 here: {e}')
            transport, protocol = await self.loop.create_connection(Client, '::1', port)
            self.assertEqual(transport.get_extra_info('peername'), ('::1', port, 0, 0))
            self.assertEqual(len(transport.get_extra_info('sockname')), 4)
            transport.write(b'Hello World!')
            await protocol.lost
            server.close()
            await server.wait_closed()

        self.run_async(main())

    def test_refused_connection(self):
        bound, port = unused_port()
        made = []
        with bound:
            with self.assertRaises(ConnectionRefusedError) as caught:
                self.run_async(self.loop.create_connection(
                    lambda: made.append(1) or Client(), '127.0.0.1', port))
        self.assertEqual(caught.exception.errno, errno.ECONNREFUSED)
        self.assertEqual(str(caught.exception),
                         f"[Errno {errno.ECONNREFUSED}] Connect call failed ('127.0.0.1', {port})")
        self.assertEqual(made, [])

    def test_unresolvable_host(self):
        with self.assertRaises(socket.gaierror):
            self.run_async(self.loop.create_connection(Client, 'no-such-host.invalid', 80))

    def test_several_addresses_first_fails(self):
        async def main():
            server, port = await self.echo_server('127.0.0.1')
            # Nothing listens on 127.0.0.2 at that port: refused, then the next.
            await self.with_addresses(['127.0.0.2', '127.0.0.1'])
            transport, protocol = await self.loop.create_connection(Client, 'two.test', port)
            self.assertEqual(transport.get_extra_info('peername'), ('127.0.0.1', port))
            transport.write(b'Hello World!')
            await protocol.lost
            server.close()
            await server.wait_closed()

        self.run_async(main())

    def test_several_addresses_all_fail(self):
        bound, port = unused_port()

        async def main():
            await self.with_addresses(['127.0.0.2', '127.0.0.1'])
            with self.assertRaisesRegex(OSError, 'Multiple exceptions: .*127.0.0.2.*127.0.0.1'):
                await self.loop.create_connection(Client, 'two.test', port)

        with bound:
            self.run_async(main())

    async def with_addresses(self, hosts):
        # A name that resolves to `hosts`, in that order (no DNS involved).
        async def getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
            self.assertEqual(host, 'two.test')
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, '', (h, int(port)))
                    for h in hosts]

        self.loop.getaddrinfo = getaddrinfo

    def test_protocol_factory_raises(self):
        class FactoryError(Exception):
            pass

        def factory():
            raise FactoryError('no protocol')

        async def main():
            server, port = await self.echo_server()
            with self.assertRaisesRegex(FactoryError, 'no protocol'):
                await self.loop.create_connection(factory, '127.0.0.1', port)
            server.close()
            await server.wait_closed()

        self.run_async(main())

    def test_fallback_keywords_still_work(self):
        async def main():
            server, port = await self.echo_server()
            local, _ = unused_port()
            local_addr = local.getsockname()
            local.close()
            transport, protocol = await self.loop.create_connection(
                Client, '127.0.0.1', port, local_addr=local_addr)
            self.assertEqual(transport.get_extra_info('sockname'), local_addr)
            transport.write(b'Hello World!')
            await protocol.lost
            sock = socket.create_connection(('127.0.0.1', port))
            sock.setblocking(False)
            transport, protocol = await self.loop.create_connection(Client, sock=sock)
            transport.write(b'Hello World!')
            await protocol.lost
            with self.assertRaisesRegex(ValueError, 'server_hostname is only meaningful with ssl'):
                await self.loop.create_connection(Client, '127.0.0.1', port,
                                                  server_hostname='x')
            server.close()
            await server.wait_closed()

        self.run_async(main())


class AsyncioConnectTest(ConnectCases, unittest.TestCase):
    def new_loop(self):
        return asyncio.SelectorEventLoop()


class TulipConnectTest(ConnectCases, unittest.TestCase):
    def new_loop(self):
        return tulip.new_event_loop()

    def test_numeric_host_echo_and_extra_info(self):
        transport = super().test_numeric_host_echo_and_extra_info()
        # The C++ connector's path, not asyncio's.
        self.assertIs(type(transport), ConnectedTransport)

    def test_cancelled_attempt_makes_no_protocol(self):
        made = []

        async def main():
            server, port = await self.echo_server()
            attempt = self.loop.create_task(
                self.loop.create_connection(lambda: made.append(1) or Client(), '127.0.0.1',
                                            port))
            await asyncio.sleep(0)  # the attempt has started
            attempt.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await attempt
            server.close()
            await server.wait_closed()

        self.run_async(main())
        self.assertEqual(made, [])

    def test_connection_churn(self):
        # Many short connections through the fast path: every one completes
        # (connect, 12 bytes, echo, close) and none is left behind.
        async def main():
            server, port = await self.echo_server()
            for _ in range(300):
                transport, protocol = await self.loop.create_connection(Client, '127.0.0.1',
                                                                        port)
                transport.write(b'Hello World!')
                self.assertIsNone(await protocol.lost)
                self.assertEqual(bytes(protocol.received), b'Hello World!')
            server.close()
            await server.wait_closed()

        self.run_async(main(), timeout=60)


if __name__ == '__main__':
    unittest.main()
