"""Every documented exit code of tulip-echo-client and tulip-echo-server, each with
its one clear line: bad arguments, refused, unresolvable, reset, verify mismatch,
timeout, address in use."""

from __future__ import annotations

import re
import socket
import struct
import threading
import unittest

import e2e_support as e2e
from e2e_support import ServerProcess, USAGE_CLIENT, USAGE_SERVER, run_client, run_server_once


class ScriptedPeer:
    """A listening socket on a free loopback port; each accepted connection is
    handed to `handler(conn)` in its own thread. The handler's exceptions are
    kept and re-raised when the peer is closed, so a broken peer fails the test."""

    def __init__(self, handler, backlog: int = 16):
        self.handler = handler
        self.listener = socket.create_server(('127.0.0.1', 0), backlog=backlog)
        self.port = self.listener.getsockname()[1]
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.connections: list[socket.socket] = []

    def __enter__(self) -> 'ScriptedPeer':
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed
            self.connections.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(e2e.bound(30))
            self.handler(conn)
        except BaseException as error:  # reported by __exit__
            self.errors.append(error)

    def __exit__(self, *exc_info) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.acceptor.join(e2e.bound(10))
        for thread in self.threads:
            thread.join(e2e.bound(10))
        for conn in self.connections:
            conn.close()
        if self.errors and exc_info[0] is None:
            raise self.errors[0]


def read_until_eof(conn: socket.socket) -> bytes:
    data = bytearray()
    while chunk := conn.recv(65536):
        data += chunk
    return bytes(data)


def reset(conn: socket.socket) -> None:
    """Closes with SO_LINGER 0: the peer gets a RST."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    conn.close()


def refused_port() -> tuple[socket.socket, int]:
    """A port bound but not listening: connecting to it is refused, and nobody else
    can take it while the returned socket is open."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    return sock, sock.getsockname()[1]


class ClientExitCodeTest(unittest.TestCase):
    def assert_one_error_line(self, result, code: int, line: str | re.Pattern,
                              quiet: bool = True) -> None:
        """Exit `code`; stderr is the seed-format log (unless quiet) and then exactly
        one error line, which matches `line`."""
        self.assertEqual(result.returncode, code, result.stderr)
        self.assertEqual(result.stdout, '')
        messages, others = e2e.split_log(result.stderr)
        if quiet:
            self.assertEqual(messages, [])
        self.assertEqual(len(others), 1, result.stderr)
        self.assertTrue(result.stderr.endswith(others[0] + '\n'), result.stderr)
        if isinstance(line, str):
            self.assertEqual(others[0], line)
        else:
            self.assertRegex(others[0], line)

    def test_refused_names_the_address_and_the_cause(self):
        holder, port = refused_port()
        with holder:
            for extra in ([], ['--quiet']):
                result = run_client('--port', str(port), *extra)
                self.assert_one_error_line(
                    result, 1, f"tulip-echo-client: connect to ('127.0.0.1', {port}) failed: "
                    'Connection refused', quiet=bool(extra))

    def test_refused_on_ipv6_loopback(self):
        if not socket.has_ipv6:
            self.skipTest('no IPv6')
        try:
            holder = socket.socket(socket.AF_INET6)
            holder.bind(('::1', 0))
        except OSError as error:
            self.skipTest(f'no IPv6 loopback: {error}')
        with holder:
            port = holder.getsockname()[1]
            result = run_client('--host', '::1', '--port', str(port), '--quiet')
            self.assert_one_error_line(
                result, 1,
                f"tulip-echo-client: connect to ('::1', {port}, 0, 0) failed: Connection refused")

    def test_unresolvable_host(self):
        result = run_client('--host', 'no-such-host.invalid', '--port', '80', '--quiet')
        # The cause is the resolver's: "Name or service not known" on a machine with
        # DNS, "Temporary failure in name resolution" without one.
        self.assert_one_error_line(
            result, 1, re.compile(r"^tulip-echo-client: cannot resolve 'no-such-host\.invalid'"
                                  r": \S.*$"))

    def test_reset_by_peer(self):
        def handler(conn):
            self.assertEqual(conn.recv(100), b'Hello World!')
            reset(conn)
        with ScriptedPeer(handler) as peer:
            result = run_client('--port', str(peer.port), '--timeout', '20')
        self.assert_one_error_line(
            result, 1, f"tulip-echo-client: connection to ('127.0.0.1', {peer.port}) lost: "
            'Connection reset by peer', quiet=False)
        messages, _ = e2e.split_log(result.stderr)
        self.assertEqual(messages[3], "sent: b'Hello World!'")
        self.assertNotIn('The server closed the connection', messages)

    def test_verify_mismatch_names_the_first_bad_byte(self):
        def corrupt(conn):
            data = bytearray(read_until_eof(conn))
            data[1000] ^= 0xff
            conn.sendall(data)
            conn.close()
        with ScriptedPeer(corrupt) as peer:
            result = run_client('--port', str(peer.port), '--size', '64K', '--eof',
                                '--verify', '--quiet')
            verbose = run_client('--port', str(peer.port), '--size', '64K', '--eof',
                                 '--verify')
        for run, quiet in ((result, True), (verbose, False)):
            self.assert_one_error_line(
                run, 3, 'tulip-echo-client: verify: the echo differs from what was sent at '
                'byte 1000', quiet=quiet)
        # The client aborted the connection itself: the server did not close it.
        self.assertNotIn('The server closed the connection', verbose.stderr)

    def test_verify_short_echo(self):
        def short(conn):
            conn.sendall(read_until_eof(conn)[:-10])
            conn.close()
        with ScriptedPeer(short) as peer:
            result = run_client('--port', str(peer.port), '--size', '64K', '--eof',
                                '--verify')
        self.assert_one_error_line(
            result, 3, 'tulip-echo-client: verify: received 65526 of 65536 bytes', quiet=False)
        self.assertEqual(e2e.split_log(result.stderr)[0][-1], 'The server closed the connection')

    def test_verify_extra_bytes(self):
        def extra(conn):
            conn.sendall(read_until_eof(conn) + b'!')
            conn.close()
        with ScriptedPeer(extra) as peer:
            result = run_client('--port', str(peer.port), '--message', 'abc', '--eof',
                                '--verify', '--quiet')
        self.assert_one_error_line(
            result, 3, 'tulip-echo-client: verify: the echo differs from what was sent at '
            'byte 3')

    def test_verify_passes_on_exact_echo(self):
        def exact(conn):
            conn.sendall(read_until_eof(conn))
            conn.close()
        with ScriptedPeer(exact) as peer:
            result = run_client('--port', str(peer.port), '--size', '1M', '--eof',
                                '--verify', '--quiet')
        self.assertEqual((result.returncode, result.stderr), (0, ''))

    def test_eof_half_closes_after_sending(self):
        seen = []

        def record(conn):
            seen.append(read_until_eof(conn))  # returns only on the client's EOF
            conn.sendall(b'bye')
            conn.close()
        with ScriptedPeer(record) as peer:
            result = run_client('--port', str(peer.port), '--message', 'abc', '--eof')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(seen, [b'abc'])
        self.assertEqual(e2e.log_messages(result.stderr)[-2:],
                         ["recv: b'bye'", 'The server closed the connection'])

    def test_timeout_against_a_peer_that_never_answers(self):
        accepted = threading.Event()
        done = threading.Event()

        def silent(conn):
            accepted.set()
            read_until_eof(conn)  # reads, never writes; ends when the client goes
            done.set()
        with ScriptedPeer(silent) as peer:
            result = run_client('--port', str(peer.port), '--timeout', '0.5', '--quiet')
            self.assert_one_error_line(
                result, 4, f"tulip-echo-client: timed out after 0.5 s talking to '127.0.0.1' "
                f'port {peer.port}')
            self.assertTrue(accepted.is_set())
            self.assertTrue(done.wait(e2e.bound(10)), 'the client left its connection open')
            verbose = run_client('--port', str(peer.port), '--timeout', '0.5')
        self.assert_one_error_line(
            verbose, 4, re.compile(r"^tulip-echo-client: timed out after 0\.5 s "), quiet=False)
        messages = e2e.split_log(verbose.stderr)[0]
        self.assertEqual(messages[3:], ["sent: b'Hello World!'"])  # no "server closed"

    def test_timeout_while_connecting(self):
        # A listener whose accept queue is full and that never accepts: the kernel
        # drops further handshakes, so the connect itself hangs until --timeout.
        listener = socket.create_server(('127.0.0.1', 0), backlog=0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(('127.0.0.1', port))
                fillers.append(filler)
            result = run_client('--port', str(port), '--timeout', '1')
            if 'connected to' in result.stderr:
                self.skipTest('this kernel completes handshakes beyond the backlog')
            self.assert_one_error_line(
                result, 4, f"tulip-echo-client: timed out after 1 s talking to '127.0.0.1' "
                f'port {port}')
        finally:
            for filler in fillers:
                filler.close()
            listener.close()

    def test_reset_while_sending_a_large_payload(self):
        # The peer resets while the client is still writing: the client must not
        # die of SIGPIPE, and reports the reset (or the broken pipe) in one line.
        def reset_early(conn):
            received = 0
            while received < 1 << 20:
                received += len(conn.recv(65536))
            reset(conn)
        with ScriptedPeer(reset_early) as peer:
            result = run_client('--port', str(peer.port), '--size', '64MiB', '--eof',
                                '--quiet')
        self.assert_one_error_line(
            result, 1, re.compile(
                r"^tulip-echo-client: connection to \('127\.0\.0\.1', " + str(peer.port)
                + r"\) lost: (Connection reset by peer|Broken pipe)$"))

    def test_help_exits_0_with_usage_on_stdout(self):
        for flag in ('--help', '-h'):
            result = run_client(flag)
            self.assertEqual((result.returncode, result.stderr), (0, ''))
            self.assertTrue(result.stdout.startswith(USAGE_CLIENT), result.stdout)

    BAD_ARGUMENTS = [
        (['--port', '0'], "--port must be a number from 1 to 65535, not '0'"),
        (['--port', '70000'], "--port must be a number from 1 to 65535, not '70000'"),
        (['--port', 'abc'], "--port must be a number from 1 to 65535, not 'abc'"),
        (['--port', '-1'], "--port must be a number from 1 to 65535, not '-1'"),
        (['--port=', ], "--port must be a number from 1 to 65535, not ''"),
        (['--port'], 'option --port needs a value'),
        (['--host'], 'option --host needs a value'),
        (['--host', ''], '--host must not be empty'),
        (['--message', ''], '--message must not be empty'),
        (['--message='], '--message must not be empty'),
        (['--message'], 'option --message needs a value'),
        (['--size', '0'], "--size must be a positive byte count (e.g. 4096, 64K, 64MiB), "
                          "not '0'"),
        (['--size', '12 parsecs'], '--size must be a positive byte count (e.g. 4096, 64K, '
                                   "64MiB), not '12 parsecs'"),
        (['--size', '-5'], "--size must be a positive byte count (e.g. 4096, 64K, 64MiB), "
                           "not '-5'"),
        (['--size', '99999999999999999999'], '--size must be a positive byte count (e.g. '
                                             "4096, 64K, 64MiB), not '99999999999999999999'"),
        (['--size'], 'option --size needs a value'),
        (['--timeout', '0'], "--timeout must be a positive number of seconds, not '0'"),
        (['--timeout', 'soon'], "--timeout must be a positive number of seconds, not 'soon'"),
        (['--timeout', 'inf'], "--timeout must be a positive number of seconds, not 'inf'"),
        (['--timeout'], 'option --timeout needs a value'),
        (['--bogus'], "unknown option '--bogus'"),
        (['-x'], "unknown option '-x'"),
        (['localhost'], "unknown option 'localhost'"),
        (['--eof=yes'], '--eof takes no value'),
        (['--verify=1'], '--verify takes no value'),
        (['--quiet=no'], '--quiet takes no value'),
    ]

    def test_bad_arguments_exit_2_with_one_line_and_usage(self):
        for arguments, message in self.BAD_ARGUMENTS:
            with self.subTest(arguments=arguments):
                result = run_client(*arguments)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, '')
                lines = result.stderr.splitlines()
                self.assertEqual(lines[0], 'tulip-echo-client: error: ' + message)
                self.assertTrue(lines[1].startswith(USAGE_CLIENT), result.stderr)
                self.assertTrue(all(line.startswith(' ') for line in lines[2:]), lines)


class ServerExitCodeTest(unittest.TestCase):
    def test_port_in_use_exits_1_with_one_line(self):
        with ServerProcess('--quiet') as first:
            result = run_server_once('--port', str(first.port))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stderr,
                         "tulip-echo-server: error while attempting to bind on address "
                         f"('127.0.0.1', {first.port}): Address already in use\n")

    def test_unresolvable_host_exits_1(self):
        result = run_server_once('--host', 'no-such-host.invalid', '--port', '0')
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertRegex(result.stderr,
                         r"^tulip-echo-server: cannot resolve 'no-such-host\.invalid': \S.*\n$")

    def test_address_not_on_this_machine_exits_1(self):
        result = run_server_once('--host', '192.0.2.1', '--port', '0')
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stderr,
                         "tulip-echo-server: error while attempting to bind on address "
                         "('192.0.2.1', 0): Cannot assign requested address\n")

    def test_help_exits_0_with_usage_on_stdout(self):
        result = run_server_once('--help')
        self.assertEqual((result.returncode, result.stderr), (0, ''))
        self.assertTrue(result.stdout.startswith(USAGE_SERVER), result.stdout)

    BAD_ARGUMENTS = [
        (['--port', '70000'], "--port must be a number from 0 to 65535, not '70000'"),
        (['--port', 'abc'], "--port must be a number from 0 to 65535, not 'abc'"),
        (['--port', '-1'], "--port must be a number from 0 to 65535, not '-1'"),
        (['--port'], 'option --port needs a value'),
        (['--host'], 'option --host needs a value'),
        (['--backlog', '0'], "--backlog must be a positive number, not '0'"),
        (['--backlog', 'many'], "--backlog must be a positive number, not 'many'"),
        (['--keepalive-idle', '0'], "--keepalive-idle must be a positive number of seconds, "
                                    "not '0'"),
        (['--keepalive-count', 'x'], "--keepalive-count must be a positive number, not 'x'"),
        (['--keepalive-interval'], 'option --keepalive-interval needs a value'),
        (['--bogus'], "unknown option '--bogus'"),
        (['8888'], "unknown option '8888'"),
        (['--keep-open=yes'], '--keep-open takes no value'),
        (['--reuse-port=1'], '--reuse-port takes no value'),
    ]

    def test_bad_arguments_exit_2_with_one_line_and_usage(self):
        for arguments, message in self.BAD_ARGUMENTS:
            with self.subTest(arguments=arguments):
                result = run_server_once(*arguments)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, '')
                lines = result.stderr.splitlines()
                self.assertEqual(lines[0], 'tulip-echo-server: error: ' + message)
                self.assertTrue(lines[1].startswith(USAGE_SERVER), result.stderr)
                self.assertTrue(all(line.startswith(' ') for line in lines[2:]), lines)


if __name__ == '__main__':
    e2e.main()
