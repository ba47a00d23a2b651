"""tulip-echo-client and tulip-echo-server over Unix sockets (--unix PATH) and
UDP (--udp): transcripts, interoperation with Python's asyncio and plain
sockets, the socket file's lifetime, timeouts, verify mismatches, refused
datagrams and the flag combinations that are refused."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import unittest

import e2e_support as e2e
from e2e_support import (ServerProcess, USAGE_CLIENT, USAGE_SERVER, log_messages, run_client,
                         run_server_once)


def transcript_ok(test: unittest.TestCase, result, peer: str, message: str = 'Hello World!'):
    test.assertEqual(result.returncode, 0, result.stderr)
    messages = log_messages(result.stderr)
    test.assertEqual(messages[0], f'connected to {peer}')
    test.assertIn(f"sent: b'{message}'", messages)
    test.assertIn(f"recv: b'{message}'", messages)
    return messages


class UnixTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix='tulip-e2e-')
        self.path = os.path.join(self.dir.name, 'echo.sock')

    def tearDown(self):
        self.dir.cleanup()

    def test_transcript_prints_the_path_as_asyncio_does(self):
        with ServerProcess('--unix', self.path) as server:
            server.wait_for(f'Serving on {self.path}', 10)
            result = run_client('--unix', self.path)
            messages = transcript_ok(self, result, self.path)
            self.assertRegex(messages[1], r'^recv_buf_size: \d+$')
            self.assertRegex(messages[2], r'^send_buf_size: \d+$')
            self.assertEqual(messages[-1], 'The server closed the connection')
            # The client's end of a Unix connection is unnamed: Python prints ''.
            server.wait_for('connection from  closed', 10)

    def test_keep_open_echoes_4_mib_verified(self):
        with ServerProcess('--unix', self.path, '--keep-open', '--quiet'):
            result = run_client('--unix', self.path, '--size', '4MiB', '--eof', '--verify',
                                '--quiet', timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_asyncio_client_talks_to_the_unix_server(self):
        async def exchange() -> bytes:
            reader, writer = await asyncio.open_unix_connection(self.path)
            writer.write(b'from asyncio')
            await writer.drain()
            data = await reader.read()
            writer.close()
            return data

        with ServerProcess('--unix', self.path):
            self.assertEqual(asyncio.run(exchange()), b'from asyncio')

    def test_socket_file_is_removed_when_the_server_stops(self):
        with ServerProcess('--unix', self.path) as server:
            self.assertTrue(os.path.exists(self.path))
            self.assertEqual(server.stop(), 0)
        self.assertFalse(os.path.exists(self.path))

    def test_live_socket_file_is_not_stolen(self):
        with ServerProcess('--unix', self.path):
            second = run_server_once('--unix', self.path)
            self.assertEqual(second.returncode, 1, second.stderr)
            lines = second.stderr.splitlines()
            self.assertEqual(len(lines), 1, second.stderr)
            self.assertIn(self.path, lines[0])
            self.assertIn('already listening', lines[0])
            # The first server still answers on its path.
            transcript_ok(self, run_client('--unix', self.path), self.path)

    def test_stale_socket_file_is_replaced(self):
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(self.path)
        stale.close()  # the file stays, nobody listens
        with ServerProcess('--unix', self.path):
            transcript_ok(self, run_client('--unix', self.path), self.path)

    def test_bad_paths_fail_with_one_line(self):
        long_path = '/tmp/' + 'x' * 150
        for tool in (run_client, run_server_once):
            result = tool('--unix', long_path)
            self.assertEqual(result.returncode, 1, result.stderr)
            lines = result.stderr.splitlines()
            self.assertEqual(len(lines), 1, result.stderr)
            self.assertIn('longer than', lines[0])
        missing = os.path.join(self.dir.name, 'nowhere', 's.sock')
        for tool in (run_client, run_server_once):
            result = tool('--unix', missing)
            self.assertEqual(result.returncode, 1, result.stderr)
            lines = result.stderr.splitlines()
            self.assertEqual(len(lines), 1, result.stderr)
            self.assertIn(missing, lines[0])
            self.assertIn('No such file or directory', lines[0])


class UdpTest(unittest.TestCase):
    def setUp(self):
        if e2e.IMPLEMENTATION == 'streams':
            # asyncio has no streams for datagrams: both tools refuse --streams --udp
            # (FlagCombinationTest.test_streams_refuses_udp).
            self.skipTest('--udp has only the Protocol implementation')

    def test_transcript_and_server_log(self):
        with ServerProcess('--udp') as server:
            result = run_client('--udp', '--port', str(server.port))
            transcript_ok(self, result, f"('127.0.0.1', {server.port})")
            server.wait_for(r"recv: b'Hello World!' from ('127.0.0.1', ", 10)
            server.wait_for(r"sent: b'Hello World!' to ('127.0.0.1', ", 10)

    def test_largest_datagram_is_verified(self):
        with ServerProcess('--udp', '--quiet') as server:
            result = run_client('--udp', '--port', str(server.port), '--size', '65507',
                                '--verify', '--quiet')
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_python_socket_gets_its_echo(self):
        with ServerProcess('--udp') as server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(e2e.bound(10))
                for payload in (b'one', b'two', b'\x00\xff'):
                    sock.sendto(payload, ('127.0.0.1', server.port))
                    data, sender = sock.recvfrom(65536)
                    self.assertEqual(data, payload)
                    self.assertEqual(sender, ('127.0.0.1', server.port))

    def scripted_peer(self, reply):
        """A UDP socket that answers each datagram with reply(data), or never if None."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(('127.0.0.1', 0))
        self.addCleanup(sock.close)

        def serve():
            try:
                while True:
                    data, sender = sock.recvfrom(65536)
                    if reply is not None:
                        sock.sendto(reply(data), sender)
            except OSError:
                return  # closed

        threading.Thread(target=serve, daemon=True).start()
        return sock.getsockname()[1]

    def test_verify_mismatch_exits_3(self):
        port = self.scripted_peer(lambda data: data[::-1])
        result = run_client('--udp', '--port', str(port), '--verify')
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn('verify: the echo differs', result.stderr.splitlines()[-1])

    def test_silent_peer_times_out_with_exit_4(self):
        port = self.scripted_peer(None)
        result = run_client('--udp', '--port', str(port), '--timeout', '0.5')
        self.assertEqual(result.returncode, 4, result.stderr)
        last = result.stderr.splitlines()[-1]
        self.assertIn('timed out after 0.5 s', last)
        self.assertIn(str(port), last)

    def test_nobody_on_the_port_is_refused(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        result = run_client('--udp', '--port', str(port))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn('Connection refused', result.stderr.splitlines()[-1])


class FlagCombinationTest(unittest.TestCase):
    def assert_usage_error(self, tool, usage, *args, mentions: str):
        result = tool(*args)
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.splitlines()
        self.assertIn(mentions, lines[0])
        self.assertTrue(lines[1].startswith(usage), result.stderr)

    def test_client_refuses_conflicting_flags(self):
        cases = [(('--unix', 'p', '--udp'), '--udp'), (('--unix', 'p', '--port', '5'), '--port'),
                 (('--port', '5', '--unix', 'p'), '--port'), (('--unix', 'p', '--host', 'h'), '--host'),
                 (('--udp', '--eof'), '--eof'), (('--udp', '--size', '70000'), '--size'),
                 (('--unix', ''), '--unix'), (('--udp=yes',), '--udp'),
                 (('--udp', '--happy-eyeballs-delay', '0.1'), '--happy-eyeballs-delay'),
                 (('--happy-eyeballs-delay', '0'), '--happy-eyeballs-delay')]
        for args, mentions in cases:
            with self.subTest(args=args):
                self.assert_usage_error(run_client, USAGE_CLIENT, *args, mentions=mentions)

    def test_server_refuses_conflicting_flags(self):
        cases = [(('--unix', 'p', '--udp'), '--udp'), (('--unix', 'p', '--port', '5'), '--port'),
                 (('--unix', 'p', '--reuse-port'), '--reuse-port'),
                 (('--udp', '--backlog', '5'), '--backlog'), (('--udp', '--no-nodelay'), 'TCP')]
        for args, mentions in cases:
            with self.subTest(args=args):
                self.assert_usage_error(run_server_once, USAGE_SERVER, *args, mentions=mentions)

    def test_streams_refuses_udp(self):
        # Written out, so that both implementations' runs check it.
        for tool, usage in ((run_client, USAGE_CLIENT), (run_server_once, USAGE_SERVER)):
            for args in (('--streams', '--udp'), ('--udp', '--streams')):
                with self.subTest(tool=tool.__name__, args=args):
                    self.assert_usage_error(tool, usage, *args, mentions='--streams and --udp')

    def test_help_documents_the_new_flags(self):
        for tool in (run_client, run_server_once):
            result = tool('--help')
            self.assertEqual(result.returncode, 0)
            self.assertIn('--unix PATH', result.stdout)
            self.assertIn('--udp', result.stdout)
            self.assertIn('--streams', result.stdout)
        self.assertIn('--happy-eyeballs-delay SEC', run_client('--help').stdout)

    def test_happy_eyeballs_delay_connects_as_usual(self):
        with ServerProcess() as server:
            result = run_client('--port', str(server.port), '--happy-eyeballs-delay', '0.25')
            transcript_ok(self, result, f"('127.0.0.1', {server.port})")


if __name__ == '__main__':
    e2e.main()
