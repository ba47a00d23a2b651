"""The seed, unchanged but for its port, under `python3 -m tulip` (tulip's asyncio
loop, the Python package of python/) against tulip-echo-server: the same transcript
as on asyncio's own loop. The package is found through PYTHONPATH, set by ctest."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

import e2e_support as e2e
from e2e_support import ServerProcess, bound, log_messages
from test_transcript import seed_source


class SeedUnderTulipTest(unittest.TestCase):
    def run_seed(self, port: int, *launcher: str) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as directory:
            script = os.path.join(directory, 'seed.py')
            with open(script, 'w') as out:
                out.write(seed_source(port))
            return subprocess.run([sys.executable, *launcher, script], capture_output=True,
                                  text=True, timeout=bound(30))

    def test_seed_under_python_m_tulip_prints_the_seed_transcript(self):
        with ServerProcess() as server:
            result = self.run_seed(server.port, '-m', 'tulip')
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(server.stop(), 0)
        lines = log_messages(result.stderr)
        # asyncio's own loop logs 'Using selector: EpollSelector' first; tulip's
        # loop has no selector to announce. The seed's own lines are the same.
        self.assertEqual(lines, [
            f"connected to ('127.0.0.1', {server.port})",
            lines[1], lines[2],
            "sent: b'Hello World!'",
            "recv: b'Hello World!'",
            'The server closed the connection',
        ])
        self.assertRegex(lines[1], r'^recv_buf_size: \d+$')
        self.assertRegex(lines[2], r'^send_buf_size: \d+$')
        served = [line for line in server.snapshot() if "recv: b'Hello World!'" in line]
        self.assertEqual(len(served), 1)

    def test_seed_without_tulip_uses_asyncio_loop(self):
        # The control: the same file on the default loop logs the selector line,
        # so the test above really ran on another loop.
        with ServerProcess() as server:
            result = self.run_seed(server.port)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(server.stop(), 0)
        self.assertEqual(log_messages(result.stderr)[0], 'Using selector: EpollSelector')

    def test_missing_script_is_a_one_line_error(self):
        result = subprocess.run([sys.executable, '-m', 'tulip', '/nonexistent/seed.py'],
                                capture_output=True, text=True, timeout=bound(30))
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)


if __name__ == '__main__':
    e2e.main()
