"""Shared helpers of the end-to-end tests of tulip-echo-client and tulip-echo-server.

Every test module runs as

    python3 <module>.py --client PATH --server PATH [--implementation protocol|streams]
                        [--sanitizers LIST] [--sanitized] [--valgrind PATH]
                        [--deadline SECONDS] [unittest arguments ...]

--implementation streams runs every tool command with --streams: the tools'
second implementation, written on the streams API, must pass the same tests
(docs/tools.md). The default, protocol, runs them as they are.

--sanitizers names the build's sanitizers (TULIP_SANITIZE) and, like --sanitized,
widens the safety bounds. --deadline SECONDS (ctest passes a little less than the
entry's TIMEOUT) makes a run that is still going at that point print every
thread's stack, kill the tools it started and fail, rather than be killed by
ctest without a word.

ctest passes the paths of the two tools it built (see CMakeLists.txt here).
Nothing in these helpers waits by sleeping: the server's port comes from its
"Serving on" line, and every wait is on a line, an exit or a socket event,
with a timeout that is only a safety bound.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

# Set by main() from the command line.
CLIENT = ''
SERVER = ''
VALGRIND = ''
SANITIZED = False
SANITIZERS = ''  # as TULIP_SANITIZE: "address,undefined", "thread" or empty
IMPLEMENTATION = 'protocol'  # or 'streams': every tool command gets --streams

# Safety bounds grow in sanitized builds, where the tools run several times slower.
SLOWDOWN = 1.0

LOG_LINE = re.compile(r'^\[MainThread \((\d+)\)\] (.*)$')
# The first listening address's port ("('::1', P, 0, 0)" for IPv6).
SERVING = re.compile(r"Serving on \('[^']*', (\d+)[,)]")
# A Unix server prints its path, as Python prints a Unix socket's address.
SERVING_UNIX = re.compile(r"Serving on (.+)$")

USAGE_CLIENT = 'usage: tulip-echo-client '
USAGE_SERVER = 'usage: tulip-echo-server '


def bound(seconds: float) -> float:
    """A safety timeout, scaled for slow builds."""
    return seconds * SLOWDOWN


def log_messages(stderr: str) -> list[str]:
    """The messages of the seed-format log lines, in order; fails on any other line."""
    messages = []
    for line in stderr.splitlines():
        match = LOG_LINE.match(line)
        if not match:
            raise AssertionError(f'not a log line: {line!r}\nwhole stderr:\n{stderr}')
        messages.append(match.group(2))
    return messages


def split_log(stderr: str) -> tuple[list[str], list[str]]:
    """(log messages, other lines) of a tool's stderr."""
    messages, others = [], []
    for line in stderr.splitlines():
        match = LOG_LINE.match(line)
        if match:
            messages.append(match.group(2))
        else:
            others.append(line)
    return messages, others


def thread_ids(stderr: str) -> set[str]:
    return {m.group(1) for m in map(LOG_LINE.match, stderr.splitlines()) if m}


def implementation_flags() -> list[str]:
    """What selects the implementation under test. It comes first, so that a test
    of a bad last argument (an option missing its value) still sees it last."""
    return ['--streams'] if IMPLEMENTATION == 'streams' else []


def client_command(*args: str) -> list[str]:
    """The command line of tulip-echo-client with `args`, in the implementation under test."""
    return [CLIENT, *implementation_flags(), *args]


def server_command(*args: str) -> list[str]:
    """The command line of tulip-echo-server with `args`, in the implementation under test."""
    return [SERVER, *implementation_flags(), *args]


def run_client(*args: str, timeout: float = 30, valgrind: list[str] | None = None
               ) -> subprocess.CompletedProcess:
    """Runs tulip-echo-client to completion; stdout and stderr as text."""
    command = (valgrind or []) + client_command(*args)
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors='backslashreplace', timeout=bound(timeout))


def run_server_once(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs tulip-echo-server expecting it to exit by itself (bad arguments, bind failure)."""
    return subprocess.run(server_command(*args), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors='backslashreplace', timeout=bound(timeout))


def proc_status_kib(pid: int, field: str) -> int:
    """A "kB" field of /proc/<pid>/status, e.g. VmRSS."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise AssertionError(f'no {field} in /proc/{pid}/status')


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc/<pid>/stat."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    # After the command name: state is field 3, utime field 14, stime field 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


def open_sockets(pid: int) -> int:
    """How many sockets a process has open (listening and connected).

    Sockets, not all descriptors: sanitizer runtimes open pipes of their own at
    unpredictable times."""
    count = 0
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            count += os.readlink(f'/proc/{pid}/fd/{fd}').startswith('socket:')
        except OSError:
            pass  # closed meanwhile
    return count


# The servers of the running test, for the watchdog's report.
_live_servers: set['ServerProcess'] = set()


class ServerProcess:
    """tulip-echo-server on a free port (--port 0), its stderr collected line by line.
    With --unix among the arguments it gets no --port, and `port` stays 0.

    Use as a context manager; on exit the server is stopped (SIGTERM, then
    SIGKILL if it does not stop) so no test leaves a process behind.
    """

    def __init__(self, *args: str, prefix: list[str] | None = None, start_timeout: float = 10,
                 preexec_fn=None, env: dict | None = None):
        self.args = args
        self.prefix = prefix or []
        self.start_timeout = start_timeout
        self.preexec_fn = preexec_fn
        self.env = env
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.process: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> 'ServerProcess':
        _live_servers.add(self)
        unix = '--unix' in self.args
        port_args = [] if unix else ['--port', '0']
        self.process = subprocess.Popen(
            self.prefix + server_command(*port_args, *self.args), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=self.preexec_fn,
            env=self.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            match = self.wait_for(SERVING_UNIX if unix else SERVING, self.start_timeout)
        except BaseException:
            self.kill()
            raise
        self.port = 0 if unix else int(match.group(1))
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode('utf-8', 'backslashreplace').rstrip('\n')
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, pattern: re.Pattern | str, timeout: float, start: int = 0) -> re.Match:
        """Waits for a stderr line (from index `start` on) whose message matches `pattern`."""
        if isinstance(pattern, str):
            pattern = re.compile(re.escape(pattern))
        deadline = time.monotonic() + bound(timeout)
        index = start
        with self._cond:
            while True:
                while index < len(self.lines):
                    match = pattern.search(self.lines[index])
                    index += 1
                    if match:
                        return match
                if self._eof:
                    raise AssertionError(
                        f'tulip-echo-server ended (status {self.process.poll()}) without a line '
                        f'matching {pattern.pattern!r}; its stderr:\n' + '\n'.join(self.lines))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f'no line matching {pattern.pattern!r} from tulip-echo-server within '
                        f'{bound(timeout):.0f} s; its stderr:\n' + '\n'.join(self.lines))
                self._cond.wait(remaining)

    def snapshot(self) -> list[str]:
        with self._cond:
            return list(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Sends `sig` and waits for the exit; returns the exit status."""
        self.process.send_signal(sig)
        status = self.process.wait(bound(timeout))
        self._reader.join(bound(timeout))
        return status

    def kill(self) -> None:
        _live_servers.discard(self)
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(bound(5))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        self.process.stderr.close()


def connect(port: int, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(('127.0.0.1', port), timeout=bound(timeout))
    return sock


def payload(seed: int, size: int) -> bytes:
    """`size` deterministic pseudo-random bytes, different for each seed."""
    return random.Random(seed).randbytes(size)


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as stat:
                ppid = int(stat.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            children.append(int(entry))
    return children


def _watchdog(seconds: float) -> None:
    """Ends a run that outlives its budget with a report, before ctest kills it
    silently: every thread's stack, then the tools still running are killed."""
    def expire() -> None:
        sys.stderr.write(f'\ne2e watchdog: the run took more than {seconds:.0f} s; '
                         'stacks of the test threads:\n')
        faulthandler.dump_traceback(all_threads=True)
        for server in list(_live_servers):
            sys.stderr.write(f'e2e watchdog: tulip-echo-server {server.pid} logged (last 20 '
                             'lines):\n' + '\n'.join(server.snapshot()[-20:]) + '\n')
        gdb = shutil.which('gdb')
        for child in _children_of(os.getpid()):
            try:
                with open(f'/proc/{child}/cmdline', 'rb') as cmdline:
                    command = cmdline.read().replace(b'\0', b' ').decode(errors='replace')
                if gdb and 'tulip-echo' in command:
                    # Where the tool is stuck, when a debugger is at hand.
                    sys.stderr.write(f'e2e watchdog: stacks of {child}: {command}\n')
                    sys.stderr.flush()
                    subprocess.run([gdb, '-p', str(child), '-batch', '-ex',
                                    'thread apply all bt 25'], stdin=subprocess.DEVNULL,
                                   stdout=sys.stderr, stderr=subprocess.DEVNULL, timeout=8)
                sys.stderr.write(f'e2e watchdog: killing {child}: {command}\n')
                os.kill(child, signal.SIGKILL)
            except (OSError, subprocess.SubprocessError):
                pass
        sys.stderr.flush()
        os._exit(1)
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def main() -> None:
    """Parses the tool paths, then runs the module's unittest tests."""
    global CLIENT, SERVER, VALGRIND, SANITIZED, SANITIZERS, SLOWDOWN, IMPLEMENTATION
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--client', required=True)
    parser.add_argument('--server', required=True)
    parser.add_argument('--valgrind', default='')
    parser.add_argument('--sanitized', action='store_true')
    parser.add_argument('--sanitizers', default='')
    parser.add_argument('--deadline', type=float, default=0)
    parser.add_argument('--implementation', choices=('protocol', 'streams'), default='protocol')
    options, rest = parser.parse_known_args()
    CLIENT, SERVER, VALGRIND = options.client, options.server, options.valgrind
    IMPLEMENTATION = options.implementation
    SANITIZERS = options.sanitizers
    SANITIZED = options.sanitized or bool(SANITIZERS)
    SLOWDOWN = 3.0 if SANITIZED else 1.0
    if options.deadline > 0:
        _watchdog(options.deadline)
    unittest.main(module='__main__', argv=[sys.argv[0], *rest], verbosity=2)
