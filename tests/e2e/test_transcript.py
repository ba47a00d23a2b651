"""The seed's transcript: tulip-echo-client against tulip-echo-server, payloads as
Python bytes literals, and interop with Python asyncio in both directions."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import unittest

import e2e_support as e2e
from e2e_support import ServerProcess, bound, log_messages, run_client

HERE = os.path.dirname(os.path.abspath(__file__))
# The seed lives beside the repository: <repo>/../shared/seed/.
SEED_FILE = os.path.normpath(
    os.path.join(HERE, '..', '..', '..', 'shared', 'seed', '000_8a55716cf55b25dd.txt'))
SEED_COPY = os.path.join(HERE, 'seed_echo_client.py')


def client_transcript(port: int, sent: str, received: list[str]) -> list[str]:
    """The seed's client lines, with the buffer sizes as patterns."""
    return ([f"connected to ('127.0.0.1', {port})", r'recv_buf_size: \d+',
             r'send_buf_size: \d+', f'sent: {sent}']
            + [f'recv: {chunk}' for chunk in received]
            + ['The server closed the connection'])


class TranscriptTest(unittest.TestCase):
    def assert_lines(self, messages: list[str], expected: list[str]) -> None:
        """Each message matches its expected line (a regex where sizes vary)."""
        self.assertEqual(len(messages), len(expected), f'{messages} vs {expected}')
        for message, pattern in zip(messages, expected):
            if pattern.startswith(('recv_buf_size', 'send_buf_size')):
                self.assertRegex(message, '^' + pattern + '$')
            else:
                self.assertEqual(message, pattern)

    def test_default_client_against_default_server(self):
        with ServerProcess() as server:
            result = run_client('--port', str(server.port))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, '')
            self.assert_lines(log_messages(result.stderr),
                              client_transcript(server.port, "b'Hello World!'",
                                                ["b'Hello World!'"]))
            # One thread, named like Python's main thread, with a real id.
            ids = e2e.thread_ids(result.stderr)
            self.assertEqual(len(ids), 1)
            self.assertGreater(int(ids.pop()), 0)
            # The server logged the whole exchange before the client saw the close.
            server.wait_for('closed', 10)
            status = server.stop()
            self.assertEqual(status, 0)
            lines = server.snapshot()
        messages = log_messages('\n'.join(lines))
        peer = re.match(r"connection from (\('127\.0\.0\.1', \d+\))$", messages[1])
        self.assertIsNotNone(peer, messages)
        self.assertEqual(messages, [
            f"Serving on ('127.0.0.1', {server.port})",
            f'connection from {peer.group(1)}',
            "recv: b'Hello World!'",
            "sent: b'Hello World!'",
            'close the client socket',
            f'connection from {peer.group(1)} closed',
            'shutting down',
        ])

    def test_message_with_quotes_and_escapes(self):
        with ServerProcess() as server:
            message = 'it\'s a "test"\t\\ \u00e9'
            result = run_client('--port', str(server.port), '--message', message)
            self.assertEqual(result.returncode, 0, result.stderr)
            shown = repr(message.encode())
            self.assert_lines(log_messages(result.stderr),
                              client_transcript(server.port, shown, [shown]))

    def test_size_payload_shows_nul_as_python_literal(self):
        # 256 bytes of the pattern hold every byte value, NUL and 0xff included;
        # the first 64 are shown, then the length, as documented.
        with ServerProcess('--keep-open') as server:
            result = run_client('--port', str(server.port), '--size', '256', '--eof',
                                '--verify')
            self.assertEqual(result.returncode, 0, result.stderr)
            messages = log_messages(result.stderr)
            sent = [m for m in messages if m.startswith('sent: ')]
            self.assertEqual(len(sent), 1, messages)
            pattern = bytes(range(64))  # the pattern's first run counts up from 0
            self.assertEqual(sent[0], f'sent: {pattern!r}... (256 bytes)')
            self.assertIn('\\x00', sent[0])
            received = [m[len('recv: '):] for m in messages if m.startswith('recv: ')]
            self.assertTrue(received)
            self.assertTrue(received[0].startswith(repr(pattern)), received[0])
            self.assertEqual(messages[-1], 'The server closed the connection')

    def test_short_payload_is_not_truncated(self):
        with ServerProcess() as server:
            result = run_client('--port', str(server.port), '--size', '64')
            self.assertEqual(result.returncode, 0, result.stderr)
            shown = repr(bytes(range(64)))
            self.assert_lines(log_messages(result.stderr),
                              client_transcript(server.port, shown, [shown]))

    def test_long_message_is_truncated_with_its_length(self):
        message = 'x' * 100 + "'"
        with ServerProcess() as server:
            result = run_client('--port', str(server.port), '--message', message)
            self.assertEqual(result.returncode, 0, result.stderr)
            shown = "b'" + 'x' * 64 + "'... (101 bytes)"
            self.assert_lines(log_messages(result.stderr),
                              client_transcript(server.port, shown, [shown]))
            server.wait_for("recv: b'" + 'x' * 64 + "'... (101 bytes)", 10)

    def test_raw_0xff_bytes_in_message(self):
        # A message is raw argv bytes: 0xff and other non-UTF-8 bytes go through as is.
        message = b'\xff\xfe\x01 end'
        with ServerProcess() as server:
            result = run_client('--port', str(server.port), '--message', message)
            self.assertEqual(result.returncode, 0, result.stderr)
            shown = repr(message)
            self.assertEqual(shown, "b'\\xff\\xfe\\x01 end'")
            self.assert_lines(log_messages(result.stderr),
                              client_transcript(server.port, shown, [shown]))
            server.wait_for(f'recv: {shown}', 10)

    def test_server_logs_nul_bytes_as_python_literal(self):
        with ServerProcess() as server:
            result = run_client('--port', str(server.port), '--size', '16')
            self.assertEqual(result.returncode, 0, result.stderr)
            server.wait_for(f'recv: {bytes(range(16))!r}', 10)
            server.wait_for(f'sent: {bytes(range(16))!r}', 10)

    def test_localhost_name(self):
        with ServerProcess() as server:
            result = run_client('--host', 'localhost', '--port', str(server.port))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("recv: b'Hello World!'", log_messages(result.stderr))

    def test_ipv6_loopback(self):
        probe = socket.socket(socket.AF_INET6)
        try:
            probe.bind(('::1', 0))
        except OSError as error:
            self.skipTest(f'no IPv6 loopback: {error}')
        finally:
            probe.close()
        with ServerProcess('--host', '::1') as server:
            self.assertEqual(server.snapshot()[0].split('] ', 1)[1],
                             f"Serving on ('::1', {server.port}, 0, 0)")
            result = run_client('--host', '::1', '--port', str(server.port))
            self.assertEqual(result.returncode, 0, result.stderr)
            messages = log_messages(result.stderr)
            self.assertEqual(messages[0], f"connected to ('::1', {server.port}, 0, 0)")
            self.assertEqual(messages[3:], ["sent: b'Hello World!'", "recv: b'Hello World!'",
                                            'The server closed the connection'])
            server.wait_for(re.compile(r"connection from \('::1', \d+, 0, 0\)$"), 10)

    def test_quiet_client_logs_nothing(self):
        with ServerProcess() as server:
            result = run_client('--port', str(server.port), '--quiet')
            self.assertEqual((result.returncode, result.stderr, result.stdout), (0, '', ''))

    def test_64_mib_eof_verify_against_keep_open(self):
        with ServerProcess('--keep-open', '--quiet') as server:
            for size in ('64MiB', '64 MiB', '64M'):
                with self.subTest(size=size):
                    result = run_client('--port', str(server.port), '--size', size, '--eof',
                                        '--verify', '--quiet', timeout=120)
                    self.assertEqual((result.returncode, result.stderr), (0, ''))
                if e2e.SANITIZED:
                    break  # one 64 MiB run is enough in the slow builds
            self.assertEqual(server.stop(), 0)

    def test_64_mib_logs_head_and_length(self):
        with ServerProcess('--keep-open', '--quiet') as server:
            result = run_client('--port', str(server.port), '--size', '64MiB', '--eof',
                                '--verify', timeout=120)
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            messages = log_messages(result.stderr)
            # One "sent:" line, logged once the last byte went to the transport: by
            # then echoed chunks have usually been logged already.
            sent = [m for m in messages if m.startswith('sent: ')]
            self.assertEqual(sent, [f'sent: {bytes(range(64))!r}... (67108864 bytes)'])
            self.assertEqual(messages[-1], 'The server closed the connection')
            chunks = [m for m in messages[3:-1] if not m.startswith('sent: ')]
            lengths = []
            for m in chunks:
                match = re.fullmatch(r'recv: (b([\'"]).*\2)(\.\.\. \((\d+) bytes\))?', m)
                self.assertIsNotNone(match, m)
                shown = ast.literal_eval(match.group(1))
                if match.group(3):
                    self.assertEqual(len(shown), 64)
                    lengths.append(int(match.group(4)))
                else:
                    self.assertLessEqual(len(shown), 64)
                    lengths.append(len(shown))
            self.assertEqual(sum(lengths), 64 << 20)


class CrossImplementationTest(unittest.TestCase):
    """The Protocol and the streams implementations (--streams) against each other:
    every pairing prints the same lines and echoes the same bytes."""

    IMPLEMENTATIONS = {'protocol': [], 'streams': ['--streams']}

    def setUp(self):
        if e2e.IMPLEMENTATION == 'streams':
            self.skipTest('the protocol run pairs both implementations itself')

    @staticmethod
    def normalized(messages: list[str]) -> list[str]:
        """Log messages with what differs from run to run (ports, buffer sizes) as N."""
        return [re.sub(r'\d+', 'N', m) for m in messages]

    def test_every_pairing_prints_the_same_lines(self):
        message = "it's \x01"
        shown = repr(message.encode())
        client_logs, server_logs = {}, {}
        for server_name, server_flags in self.IMPLEMENTATIONS.items():
            with ServerProcess(*server_flags) as server:
                for client_name, client_flags in self.IMPLEMENTATIONS.items():
                    start = len(server.snapshot())
                    result = run_client(*client_flags, '--port', str(server.port),
                                        '--message', message)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    client_logs[server_name, client_name] = self.normalized(
                        log_messages(result.stderr))
                    server.wait_for(re.compile(r'\) closed$'), 10, start=start)
                self.assertEqual(server.stop(), 0)
                server_logs[server_name] = self.normalized(
                    log_messages('\n'.join(server.snapshot())))
        expected = self.normalized(client_transcript(0, shown, [shown]))
        expected[1:3] = ['recv_buf_size: N', 'send_buf_size: N']
        for (server_name, client_name), messages in client_logs.items():
            with self.subTest(server=server_name, client=client_name):
                self.assertEqual(messages, expected)
        connection = self.normalized([
            "connection from ('127.0.0.1', 1)", f'recv: {shown}', f'sent: {shown}',
            'close the client socket', "connection from ('127.0.0.1', 1) closed"])
        self.assertEqual(server_logs['protocol'],
                         ["Serving on ('N.N.N.N', N)", *connection, *connection,
                          'shutting down'])
        self.assertEqual(server_logs['streams'], server_logs['protocol'])

    def test_every_pairing_echoes_4_mib_byte_exact(self):
        for server_name, server_flags in self.IMPLEMENTATIONS.items():
            with ServerProcess('--keep-open', '--quiet', *server_flags) as server:
                for client_name, client_flags in self.IMPLEMENTATIONS.items():
                    with self.subTest(server=server_name, client=client_name):
                        result = run_client(*client_flags, '--port', str(server.port), '--size',
                                            '4MiB', '--eof', '--verify', '--quiet', timeout=60)
                        self.assertEqual((result.returncode, result.stderr), (0, ''))
                self.assertEqual(server.stop(), 0)
                self.assertEqual(server.snapshot()[1:], [])


def seed_source(port: int) -> str:
    """The seed client's code with its hard-coded port replaced."""
    with open(SEED_COPY) as copy:
        code = copy.read()
    target = "'127.0.0.1', 8888"
    assert code.count(target) == 1, 'the seed client no longer names 127.0.0.1:8888'
    return code.replace(target, f"'127.0.0.1', {port}")


class SeedInteropTest(unittest.TestCase):
    def test_copy_matches_the_seed(self):
        if not os.path.exists(SEED_FILE):
            self.skipTest(f'the seed file is not beside the repository ({SEED_FILE}); '
                          'the in-repo copy is used as it is')
        with open(SEED_FILE) as seed:
            block = re.search(r'```python\n(.*?)```', seed.read(), re.S)
        self.assertIsNotNone(block, 'no python code block in the seed file')
        with open(SEED_COPY) as copy:
            lines = copy.read().split('\n')
        while lines and lines[0].startswith('#'):
            lines.pop(0)
        self.assertEqual(lines.pop(0), '')
        self.assertEqual('\n'.join(lines), block.group(1))

    def test_seed_client_against_tulip_server(self):
        with ServerProcess() as server:
            seed = subprocess.run([sys.executable, '-c', seed_source(server.port)],
                                  capture_output=True, text=True, timeout=bound(30))
            self.assertEqual(seed.returncode, 0, seed.stderr)
            tulip = run_client('--port', str(server.port))
            self.assertEqual(tulip.returncode, 0, tulip.stderr)
            self.assertEqual(server.stop(), 0)
        # Python's logging prints "[MainThread (id)] message": the same shape, and,
        # but for the socket buffer sizes, the same lines as tulip-echo-client.
        seed_lines = log_messages(seed.stderr)
        # asyncio's own debug line, logged before the seed's code runs; it comes
        # from Python's event loop, not from the seed's protocol.
        self.assertEqual(seed_lines.pop(0), 'Using selector: EpollSelector')
        self.assertEqual(seed_lines, [
            f"connected to ('127.0.0.1', {server.port})",
            seed_lines[1], seed_lines[2],
            "sent: b'Hello World!'",
            "recv: b'Hello World!'",
            'The server closed the connection',
        ])
        self.assertRegex(seed_lines[1], r'^recv_buf_size: \d+$')
        self.assertRegex(seed_lines[2], r'^send_buf_size: \d+$')
        tulip_lines = log_messages(tulip.stderr)
        self.assertEqual([re.sub(r'\d+$', 'N', m) for m in seed_lines],
                         [re.sub(r'\d+$', 'N', m) for m in tulip_lines])
        served = [line for line in server.snapshot() if "recv: b'Hello World!'" in line]
        self.assertEqual(len(served), 2)


class AsyncioServer:
    """An asyncio Protocol echo server on a free port, run in a thread of the test.

    keep_open=False is the asyncio docs' server (echo the first chunk, close);
    keep_open=True echoes everything until EOF, then closes.
    """

    def __init__(self, keep_open: bool = False):
        self.keep_open = keep_open
        self.log: list[str] = []
        self.port = 0
        self._ready = threading.Event()

    def __enter__(self) -> 'AsyncioServer':
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(bound(10)):
            raise AssertionError('the asyncio server did not start')
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(bound(10))

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        outer = self

        class EchoServerProtocol(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                outer.log.append(f"connection from {transport.get_extra_info('peername')}")

            def data_received(self, data):
                outer.log.append(f'data received: {data!r}')
                self.transport.write(data)
                if not outer.keep_open:
                    self.transport.close()

            def eof_received(self):
                outer.log.append('eof received')
                return False

        server = await self._loop.create_server(EchoServerProtocol, '127.0.0.1', 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop


class AsyncioInteropTest(unittest.TestCase):
    def test_tulip_client_against_asyncio_server(self):
        with AsyncioServer() as server:
            result = run_client('--port', str(server.port))
        self.assertEqual(result.returncode, 0, result.stderr)
        messages = log_messages(result.stderr)
        self.assertEqual(len(messages), 6, messages)
        self.assertEqual(messages[0], f"connected to ('127.0.0.1', {server.port})")
        self.assertEqual(messages[3:], ["sent: b'Hello World!'", "recv: b'Hello World!'",
                                        'The server closed the connection'])
        self.assertEqual(server.log[1], "data received: b'Hello World!'")

    def test_tulip_client_verifies_4_mib_through_asyncio_server(self):
        with AsyncioServer(keep_open=True) as server:
            result = run_client('--port', str(server.port), '--size', '4MiB', '--eof',
                                '--verify', '--quiet', timeout=60)
        self.assertEqual((result.returncode, result.stderr), (0, ''))
        self.assertEqual(server.log[-1], 'eof received')


if __name__ == '__main__':
    e2e.main()
