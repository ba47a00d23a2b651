"""tulip-echo-client --tls and tulip-echo-server --tls: the seed's transcript over
TLS, over TCP and Unix sockets; certificate failures (untrusted, self-signed,
wrong host) exit 1 with the reason; a handshake that stalls exits 4; a plain
client is refused by the TLS server, which goes on serving; interoperation
with Python's asyncio TLS server; the option combinations that are refused.

The certificates are made for the run with the openssl program (in a
temporary directory); without it the module skips, saying so."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

import e2e_support as e2e
from e2e_support import (ServerProcess, USAGE_CLIENT, USAGE_SERVER, log_messages, run_client,
                         run_server_once)

TLS_LINE = re.compile(r'^tls: TLSv1\.[23] \S+$')
# A server log line is matched whole, its "[MainThread (...)] " prefix included.
SERVER_TLS_LINE = re.compile(r'\] tls: TLSv1\.[23] \S+$')


class Pki:
    """A CA, a server certificate it signed for localhost and 127.0.0.1, one for
    another name, and a self-signed one: EC P-256 keys, made with openssl."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix='tulip-e2e-tls-')
        self.ca = self._path('ca.pem')
        self._openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                      '-nodes', '-keyout', self._path('ca.key'), '-out', self.ca,
                      '-subj', '/CN=tulip e2e CA', '-days', '2')
        self.server = self._signed('server', 'localhost', 'DNS:localhost,IP:127.0.0.1')
        self.other = self._signed('other', 'other.example', 'DNS:other.example')
        self.self_signed = (self._path('self.pem'), self._path('self.key'))
        self._openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                      '-nodes', '-keyout', self.self_signed[1], '-out', self.self_signed[0],
                      '-subj', '/CN=localhost', '-addext',
                      'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '2')

    def _path(self, name: str) -> str:
        return os.path.join(self.dir.name, name)

    def _openssl(self, *args: str) -> None:
        subprocess.run(['openssl', *args], check=True, capture_output=True)

    def _signed(self, name: str, common_name: str, alt_names: str) -> tuple[str, str]:
        cert, key, request = self._path(name + '.pem'), self._path(name + '.key'), self._path(
            name + '.csr')
        extensions = self._path(name + '.ext')
        with open(extensions, 'w') as f:
            f.write(f'subjectAltName={alt_names}\n')
        self._openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                      '-keyout', key, '-out', request, '-subj', f'/CN={common_name}')
        self._openssl('x509', '-req', '-in', request, '-CA', self.ca, '-CAkey',
                      self._path('ca.key'), '-CAcreateserial', '-out', cert, '-days', '2',
                      '-extfile', extensions)
        return cert, key


PKI: Pki | None = None


def setUpModule():
    global PKI
    if shutil.which('openssl') is None:
        raise unittest.SkipTest('the openssl program is not installed (Debian: apt-get install '
                                'openssl); these tests make their certificates with it')
    PKI = Pki()


def tearDownModule():
    if PKI is not None:
        PKI.dir.cleanup()


def tls_server(*args: str, pair: tuple[str, str] | None = None) -> ServerProcess:
    cert, key = pair or PKI.server
    return ServerProcess('--tls', '--cert', cert, '--key', key, *args)


class TlsTranscriptTest(unittest.TestCase):
    def test_the_seed_transcript_over_tls(self):
        with tls_server() as server:
            result = run_client('--tls', '--cafile', PKI.ca, '--port', str(server.port))
            self.assertEqual(result.returncode, 0, result.stderr)
            messages = log_messages(result.stderr)
            self.assertEqual(messages[0], f"connected to ('127.0.0.1', {server.port})")
            self.assertRegex(messages[1], r'^recv_buf_size: \d+$')
            self.assertRegex(messages[2], r'^send_buf_size: \d+$')
            self.assertRegex(messages[3], TLS_LINE)
            self.assertEqual(messages[4:], ["sent: b'Hello World!'", "recv: b'Hello World!'",
                                            'The server closed the connection'])
            server.wait_for(SERVER_TLS_LINE, 10)
            server.wait_for("sent: b'Hello World!'", 10)
            server.wait_for('close the client socket', 10)

    def test_server_hostname_and_a_message_verified(self):
        with tls_server() as server:
            result = run_client('--tls', '--cafile', PKI.ca, '--server-hostname', 'localhost',
                                '--port', str(server.port), '--message', 'over TLS', '--verify')
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("recv: b'over TLS'", log_messages(result.stderr))

    def test_over_a_unix_socket(self):
        with tempfile.TemporaryDirectory(prefix='tulip-e2e-') as directory:
            path = os.path.join(directory, 'tls.sock')
            with tls_server('--unix', path):
                result = run_client('--unix', path, '--tls', '--cafile', PKI.ca,
                                    '--server-hostname', 'localhost')
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(log_messages(result.stderr)[-1],
                                 'The server closed the connection')

    def test_insecure_accepts_a_self_signed_certificate(self):
        with tls_server(pair=PKI.self_signed) as server:
            result = run_client('--tls', '--insecure', '--port', str(server.port), '--quiet')
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stderr, '')

    def test_the_client_against_an_asyncio_tls_server(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*PKI.server)
        ready = threading.Event()
        port = []

        async def serve():
            async def handle(reader, writer):
                writer.write(await reader.read(100))
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, '127.0.0.1', 0, ssl=context)
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            async with server:
                await asyncio.sleep(e2e.bound(20))

        thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        thread.start()
        self.assertTrue(ready.wait(e2e.bound(10)))
        result = run_client('--tls', '--cafile', PKI.ca, '--port', str(port[0]), '--verify')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("recv: b'Hello World!'", log_messages(result.stderr))


class TlsFailureTest(unittest.TestCase):
    def expect_failure(self, server_pair, reason: str, *client_args: str):
        with tls_server(pair=server_pair) as server:
            result = run_client('--tls', '--port', str(server.port), *client_args)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertEqual(
                result.stderr.strip(),
                f"tulip-echo-client: TLS handshake with '127.0.0.1' port {server.port} failed: "
                f'{reason}')
            # The server logs why it gave up, and goes on serving.
            server.wait_for('SSL handshake failed', 10)
            again = run_client('--tls', '--insecure', '--port', str(server.port), '--quiet')
            self.assertEqual(again.returncode, 0, again.stderr)

    def test_an_untrusted_certificate(self):
        # The system's CA store does not know the test CA.
        self.expect_failure(PKI.server,
                            'certificate verify failed: unable to get local issuer certificate')

    def test_a_self_signed_certificate(self):
        self.expect_failure(PKI.self_signed, 'certificate verify failed: self-signed certificate',
                            '--cafile', PKI.ca)

    def test_a_certificate_for_another_host(self):
        self.expect_failure(PKI.other, 'certificate verify failed: hostname mismatch',
                            '--cafile', PKI.ca, '--server-hostname', 'localhost')

    def test_a_stalled_handshake_exits_4(self):
        with socket.socket() as silent:
            silent.bind(('127.0.0.1', 0))
            silent.listen()
            port = silent.getsockname()[1]
            result = run_client('--tls', '--insecure', '--port', str(port),
                                '--handshake-timeout', '0.2')
            self.assertEqual(result.returncode, 4, result.stderr)
            self.assertEqual(
                result.stderr.strip(),
                f"tulip-echo-client: TLS handshake with '127.0.0.1' port {port} failed: "
                'SSL handshake is taking longer than 0.2 seconds: aborting the connection')

    def test_a_plain_client_is_refused_and_the_server_goes_on(self):
        with tls_server() as server:
            plain = run_client('--port', str(server.port), '--quiet')
            # The plain client sees its connection closed without an answer.
            self.assertEqual(plain.returncode, 0, plain.stderr)
            server.wait_for('SSL handshake failed', 10)
            server.wait_for('wrong version number', 10)
            result = run_client('--tls', '--cafile', PKI.ca, '--port', str(server.port),
                                '--quiet')
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_a_silent_client_is_dropped_after_the_servers_handshake_timeout(self):
        with tls_server('--handshake-timeout', '0.2') as server:
            with e2e.connect(server.port) as sock:
                sock.settimeout(e2e.bound(10))
                self.assertEqual(sock.recv(1), b'')  # the server closed it
            server.wait_for('SSL handshake is taking longer than 0.2 seconds', 10)

    def test_a_certificate_that_cannot_be_loaded_exits_1(self):
        result = run_server_once('--tls', '--cert', os.path.join(PKI.dir.name, 'missing.pem'))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn('missing.pem', result.stderr)
        self.assertIn('No such file or directory', result.stderr)

    def test_a_certificate_without_its_key_names_what_is_missing(self):
        cert, key = PKI.server
        cases = [
            (('--cert', cert), f"no private key in '{cert}' (name the key's file"),
            (('--cert', cert, '--key', cert), f"no private key in '{cert}' (no PEM PRIVATE KEY"),
            (('--cert', key, '--key', key), f"no certificate in '{key}' (no PEM CERTIFICATE"),
            (('--cert', cert, '--key', PKI.self_signed[1]), 'does not match the certificate'),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                result = run_server_once('--tls', *args)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertIn(message, result.stderr)


class TlsFlagTest(unittest.TestCase):
    def client_refuses(self, *args: str, message: str):
        result = run_client(*args)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.splitlines()[0], f'tulip-echo-client: error: {message}')
        self.assertTrue(result.stderr.splitlines()[1].startswith(USAGE_CLIENT))

    def server_refuses(self, *args: str, message: str):
        result = run_server_once(*args)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.splitlines()[0], f'tulip-echo-server: error: {message}')
        self.assertTrue(result.stderr.splitlines()[1].startswith(USAGE_SERVER))

    def test_client_combinations(self):
        self.client_refuses('--cafile', 'ca.pem', message='--cafile needs --tls')
        self.client_refuses('--insecure', message='--insecure needs --tls')
        if e2e.IMPLEMENTATION == 'protocol':  # --streams --udp is refused for itself first
            self.client_refuses('--tls', '--udp', message='--tls and --udp cannot be combined '
                                '(TLS runs over a stream)')
        self.client_refuses('--tls', '--eof',
                            message='--eof cannot be combined with --tls: TLS has no half-close')
        self.client_refuses('--tls', '--unix', 'x.sock',
                            message='--tls with --unix needs --server-hostname (the name the '
                            'certificate is for) or --insecure')

    def test_server_combinations(self):
        self.server_refuses('--tls', message="--tls needs --cert FILE (the server's certificate "
                            'chain)')
        self.server_refuses('--cert', 'c.pem', message='--cert needs --tls')
        if e2e.IMPLEMENTATION == 'protocol':
            self.server_refuses('--tls', '--cert', 'c.pem', '--udp',
                                message='--tls and --udp cannot be combined (TLS runs over a '
                                'stream)')


if __name__ == '__main__':
    e2e.main()
