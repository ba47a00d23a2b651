"""tulip.EventLoop's backend choice and how reads reach a Protocol.

Without TULIP_BACKEND the Python loop runs on epoll (docs/python.md says
why); TULIP_BACKEND picks the other. On either backend, reads that fill the
reader's buffer are gathered into one data_received call: every byte must
still arrive, in order, also when a message ends exactly on a buffer's edge
(its last read is a full one, handed over from the ready queue) and when the
peer closes right after.

Run with the package on PYTHONPATH (ctest sets it to <build>/python).
"""

from __future__ import annotations

import asyncio
import os
import unittest

import tulip

SIZES = (1, 4096, 16384, 16385, 32768, 100 * 1024, 256 * 1024, 256 * 1024 + 1, 1 << 20)


def pattern(size):
    return bytes(i % 251 for i in range(size))


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        assert type(data) is bytes and data
        self.transport.write(data)

    def eof_received(self):
        self.transport.close()


class Collect(asyncio.Protocol):
    def __init__(self, expected):
        self.loop = asyncio.get_running_loop()
        self.expected = expected
        self.got = bytearray()
        self.calls = 0
        self.full = self.loop.create_future()
        self.lost = self.loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.calls += 1
        self.got += data
        if len(self.got) >= self.expected and not self.full.done():
            self.full.set_result(None)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


class BackendChoiceTest(unittest.TestCase):
    def setUp(self):
        self.saved = os.environ.pop('TULIP_BACKEND', None)

    def tearDown(self):
        os.environ.pop('TULIP_BACKEND', None)
        if self.saved is not None:
            os.environ['TULIP_BACKEND'] = self.saved

    def backend_of_new_loop(self):
        loop = tulip.new_event_loop()
        try:
            return loop._core.backend_name()
        finally:
            loop.close()

    def test_epoll_by_default(self):
        self.assertEqual(self.backend_of_new_loop(), 'epoll')

    def test_tulip_backend_variable_chooses(self):
        os.environ['TULIP_BACKEND'] = 'epoll'
        self.assertEqual(self.backend_of_new_loop(), 'epoll')
        if self._uring_available():
            os.environ['TULIP_BACKEND'] = 'io_uring'
            self.assertEqual(self.backend_of_new_loop(), 'io_uring')

    def test_bad_backend_name_is_a_clear_error(self):
        os.environ['TULIP_BACKEND'] = 'bogus'
        with self.assertRaisesRegex(ValueError, "TULIP_BACKEND: .*'bogus'"):
            tulip.new_event_loop()

    @staticmethod
    def _uring_available():
        os.environ['TULIP_BACKEND'] = 'io_uring'
        try:
            tulip.new_event_loop().close()
            return True
        except RuntimeError:
            return False


class ReadsCases:
    backend = None

    def setUp(self):
        self.saved = os.environ.get('TULIP_BACKEND')
        os.environ['TULIP_BACKEND'] = self.backend
        try:
            self.loop = tulip.new_event_loop()
        except RuntimeError as e:
            self.skipTest(f'{self.backend} unavailable: {e}')
        finally:
            if self.saved is None:
                os.environ.pop('TULIP_BACKEND', None)
            else:
                os.environ['TULIP_BACKEND'] = self.saved
        self.errors = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))

    def tearDown(self):
        self.loop.close()
        self.assertEqual(self.errors, [])

    def run_async(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    def test_every_size_arrives_whole(self):
        async def main():
            server = await self.loop.create_server(Echo, '127.0.0.1', 0)
            port = server.sockets[0].getsockname()[1]
            for size in SIZES:
                data = pattern(size)
                transport, client = await self.loop.create_connection(
                    lambda: Collect(size), '127.0.0.1', port)
                transport.write(data)
                await client.full  # no EOF needed: a full last read is flushed too
                self.assertEqual(bytes(client.got), data, size)
                self.assertLessEqual(client.calls, size)
                transport.close()
                await client.lost
            server.close()
            await server.wait_closed()

        self.run_async(main())

    def test_bytes_then_eof_in_order(self):
        events = []

        class Recorder(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                events.append(('data', len(data)))

            def eof_received(self):
                events.append(('eof', 0))

            def connection_lost(self, exc):
                events.append(('lost', 0))
                done.set_result(None)

        async def main():
            server = await self.loop.create_server(Recorder, '127.0.0.1', 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.write(pattern(64 * 1024))  # whole 16 KiB buffers, then EOF
            writer.write_eof()
            await done
            writer.close()
            server.close()
            await server.wait_closed()

        done = self.loop.create_future()
        self.run_async(main())
        self.assertEqual(sum(n for kind, n in events if kind == 'data'), 64 * 1024)
        self.assertEqual([kind for kind, _ in events][-2:], ['eof', 'lost'])


class EpollReadsTest(ReadsCases, unittest.TestCase):
    backend = 'epoll'


class UringReadsTest(ReadsCases, unittest.TestCase):
    backend = 'io_uring'


if __name__ == '__main__':
    unittest.main()
