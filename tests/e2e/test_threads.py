"""tulip-echo-server --threads N: several loops on several threads serving one
port (a ServerGroup), the client's transcript unchanged, a clean stop on a
signal, and the refused values and combinations (docs/tools.md)."""

from __future__ import annotations

import re
import signal
import socket
import unittest

import e2e_support as e2e
from e2e_support import ServerProcess, log_messages, run_client, run_server_once

CONNECTION = re.compile(r"^\[MainThread \((\d+)\)\] connection from \('127\.0\.0\.1', \d+\)$")


class ThreadsTest(unittest.TestCase):
    def test_clients_get_the_same_transcript_from_two_loops(self):
        with ServerProcess('--threads', '2') as server:
            # The kernel spreads connections by a hash of their ports: over 32
            # clients, odds of one loop getting none are 2^-31.
            for _ in range(32):
                result = run_client('--port', str(server.port))
                self.assertEqual(result.returncode, 0, result.stderr)
                messages = log_messages(result.stderr)
                self.assertEqual(messages[0], f"connected to ('127.0.0.1', {server.port})")
                self.assertEqual(messages[3:], ["sent: b'Hello World!'", "recv: b'Hello World!'",
                                                'The server closed the connection'])
            self.assertEqual(server.stop(), 0)
            lines = server.snapshot()
        threads = {m.group(1) for m in map(CONNECTION.match, lines) if m}
        self.assertEqual(len(threads), 2, lines)
        messages = log_messages('\n'.join(lines))
        self.assertEqual(messages[0], f"Serving on ('127.0.0.1', {server.port})")
        self.assertEqual(messages[-1], 'shutting down')
        self.assertEqual(sum(m.endswith(' closed') for m in messages), 32)

    def test_keep_open_echo_verifies_every_byte(self):
        with ServerProcess('--threads', '2', '--keep-open', '--quiet') as server:
            for _ in range(4):
                result = run_client('--port', str(server.port), '--size', '1MiB', '--eof',
                                    '--verify', '--quiet')
                self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(server.stop(), 0)

    def test_one_loop_per_cpu(self):
        with ServerProcess('--threads', '0') as server:
            result = run_client('--port', str(server.port))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(server.stop(signal.SIGINT), 0)

    def test_a_signal_closes_open_connections_and_exits_cleanly(self):
        with ServerProcess('--threads', '2', '--keep-open') as server:
            with socket.create_connection(('127.0.0.1', server.port)) as client:
                client.sendall(b'still here')
                received = b''
                while len(received) < 10:
                    chunk = client.recv(64)
                    self.assertTrue(chunk)
                    received += chunk
                self.assertEqual(received, b'still here')
                self.assertEqual(server.stop(signal.SIGINT), 0)
                # The server closed the connection with a FIN, not a reset.
                self.assertEqual(client.recv(64), b'')
            self.assertIn('shutting down', log_messages('\n'.join(server.snapshot())))

    def test_a_port_in_use_is_one_error_line(self):
        with socket.socket() as taken:
            taken.bind(('127.0.0.1', 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run_server_once('--threads', '2', '--port', str(port))
        self.assertEqual(result.returncode, 1, result.stderr)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn('address already in use', lines[0].lower())

    def test_bad_values_and_combinations_exit_2(self):
        cases = [(('--threads', '-1'), '--threads'), (('--threads', 'two'), '--threads'),
                 (('--threads', '5000'), '--threads'), (('--threads',), '--threads'),
                 (('--threads', '2', '--unix', 'p'), '--unix'),
                 (('--threads', '2', '--udp'), '--udp')]
        for args, mentions in cases:
            with self.subTest(args=args):
                result = run_server_once(*args)
                self.assertEqual(result.returncode, 2, result.stderr)
                lines = result.stderr.splitlines()
                self.assertIn(mentions, lines[0])
                self.assertTrue(lines[1].startswith(e2e.USAGE_SERVER), result.stderr)


if __name__ == '__main__':
    e2e.main()
