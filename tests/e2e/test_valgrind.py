"""Both tools under valgrind memcheck: the seed's transcript and a --keep-open echo
of a few MiB, with zero errors and no definite leaks. Registered only for builds
without sanitizers, when valgrind is installed (see CMakeLists.txt)."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import unittest

import e2e_support as e2e
from e2e_support import ServerProcess, log_messages, run_client


class ValgrindTest(unittest.TestCase):
    def setUp(self):
        if not e2e.VALGRIND:
            self.skipTest('valgrind was not found when the build was configured')
        self.logs = tempfile.TemporaryDirectory(prefix='tulip-valgrind-')
        self.addCleanup(self.logs.cleanup)

    def memcheck(self, name: str) -> list[str]:
        # Valgrind's own report goes to a file so the tools' stderr stays exact.
        return [e2e.VALGRIND, '--error-exitcode=99', '--leak-check=full',
                '--errors-for-leak-kinds=definite', '--show-leak-kinds=definite',
                f'--log-file={os.path.join(self.logs.name, name)}.log']

    def assert_clean(self, name: str) -> None:
        with open(os.path.join(self.logs.name, name + '.log')) as log:
            report = log.read()
        self.assertRegex(report, r'ERROR SUMMARY: 0 errors from 0 contexts', report)
        lost = re.search(r'definitely lost: ([\d,]+) bytes', report)
        if lost:  # absent when nothing at all was left allocated
            self.assertEqual(lost.group(1), '0', report)

    def test_transcript_under_valgrind(self):
        with ServerProcess(prefix=self.memcheck('server'), start_timeout=60) as server:
            result = run_client('--port', str(server.port), valgrind=self.memcheck('client'),
                                timeout=120)
            self.assertEqual(result.returncode, 0, result.stderr)
            messages = log_messages(result.stderr)
            self.assertEqual(messages[0], f"connected to ('127.0.0.1', {server.port})")
            self.assertEqual(messages[3:], ["sent: b'Hello World!'", "recv: b'Hello World!'",
                                            'The server closed the connection'])
            server.wait_for('closed', 30)
            self.assertEqual(server.stop(timeout=60), 0, server.snapshot())
        self.assertEqual(log_messages('\n'.join(server.snapshot()))[-1], 'shutting down')
        self.assert_clean('client')
        self.assert_clean('server')

    def test_keep_open_echo_of_4_mib_under_valgrind(self):
        with ServerProcess('--keep-open', '--quiet', prefix=self.memcheck('server'),
                           start_timeout=60) as server:
            result = run_client('--port', str(server.port), '--size', '4MiB', '--eof',
                                '--verify', '--quiet', valgrind=self.memcheck('client'),
                                timeout=240)
            self.assertEqual((result.returncode, result.stderr), (0, ''))
            self.assertEqual(server.stop(timeout=60), 0, server.snapshot())
            self.assertEqual(server.snapshot()[1:], [])
        self.assert_clean('client')
        self.assert_clean('server')

    def test_client_error_paths_under_valgrind(self):
        # Refused, unresolvable (the resolver thread), and a timeout against a peer
        # that accepts and never answers: each exits as documented, cleanly.
        refused = socket.socket()
        refused.bind(('127.0.0.1', 0))
        silent = socket.create_server(('127.0.0.1', 0))
        cases = [
            ('refused', ['--port', str(refused.getsockname()[1])], 1),
            ('unresolvable', ['--host', 'no-such-host.invalid'], 1),
            ('timeout', ['--port', str(silent.getsockname()[1]), '--timeout', '1'], 4),
            ('usage', ['--port', '70000'], 2),
        ]
        with refused, silent:
            for name, arguments, code in cases:
                with self.subTest(case=name):
                    result = run_client(*arguments, '--quiet', valgrind=self.memcheck(name),
                                        timeout=120)
                    self.assertEqual(result.returncode, code, result.stderr)
                    self.assertTrue(result.stderr.startswith('tulip-echo-client: '),
                                    result.stderr)
                    self.assert_clean(name)


if __name__ == '__main__':
    e2e.main()
