"""CPython's own asyncio tests (Debian's libpython3.11-testsuite, test.test_asyncio)
bound to tulip's loop the way CPython binds them to its selector loop.

Each mixin gets a subclass whose loop factory makes a tulip.EventLoop. Cases that
exercise what tulip's loop does not have are skipped, each with its reason (the
SKIPS table); the counts -- passed, failed, skipped by reason -- are printed at
the end. Exit status 0 when nothing failed.

Usage: python3 run_cpython_asyncio_tests.py [-v] [unittest names...]
"""

from __future__ import annotations

import collections
import sys
import unittest

import tulip

try:
    from test.test_asyncio import test_buffered_proto
    from test.test_asyncio import test_events
    from test.test_asyncio import test_server
    from test.test_asyncio import test_sock_lowlevel
    from test.test_asyncio import utils as test_utils
except ImportError as error:
    sys.exit(f'CPython\'s test suite is missing ({error}); Debian: apt-get install '
             'libpython3.11-testsuite')

# Reasons, named once.
UNIX = 'Unix sockets: create_unix_connection/create_unix_server not implemented yet'
DATAGRAM = 'UDP: create_datagram_endpoint not implemented yet'
PIPES = 'pipes: connect_read_pipe/connect_write_pipe not implemented yet'
SUBPROCESS = 'subprocesses not implemented yet'
SELECTOR = 'inspects the selector loop\'s internals (selector, _ready, self-pipe)'

# test id suffix -> reason
SKIPS = {
    'test_create_datagram_endpoint': DATAGRAM,
    'test_create_datagram_endpoint_ipv6': DATAGRAM,
    'test_create_datagram_endpoint_sock': DATAGRAM,
    'test_internal_fds': SELECTOR,
    'test_timeout_rounding': SELECTOR,
    'test_read_pipe': PIPES,
    'test_unclosed_pipe_transport': PIPES,
    'test_write_pipe': PIPES,
    'test_write_pipe_disconnect_on_close': PIPES,
    'test_read_pty_output': PIPES,
    'test_write_pty': PIPES,
    'test_bidirectional_pty': PIPES,
    'test_start_unix_server_1': UNIX,
    'test_create_unix_server_1': UNIX,
}


def tulip_loop():
    return tulip.new_event_loop()


class TulipEventLoopTests(test_events.EventLoopTestsMixin, test_utils.TestCase):
    def create_event_loop(self):
        return tulip_loop()


class TulipStartServerTests(test_server.BaseStartServer, unittest.TestCase):
    def new_loop(self):
        return tulip_loop()


class TulipBufferedProtocolTests(test_buffered_proto.ReceiveStuffProto, unittest.TestCase):
    def new_loop(self):
        return tulip_loop()


class TulipSockTests(test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase):
    def create_event_loop(self):
        return tulip_loop()


CLASSES = (TulipEventLoopTests, TulipStartServerTests, TulipBufferedProtocolTests,
           TulipSockTests)


def apply_skips(suite: unittest.TestSuite, reasons: collections.Counter) -> None:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            apply_skips(test, reasons)
            continue
        name = test.id().rsplit('.', 1)[-1]
        reason = SKIPS.get(name)
        if reason is not None:
            setattr(test, name, unittest.skip(reason)(getattr(test, name)))


class CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(argv: list[str]) -> int:
    verbosity = 2 if '-v' in argv else 1
    names = [a for a in argv if a != '-v']
    loader = unittest.TestLoader()
    if names:
        suite = loader.loadTestsFromNames(names, sys.modules[__name__])
    else:
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in CLASSES)
    apply_skips(suite, collections.Counter())
    runner = unittest.TextTestRunner(verbosity=verbosity, resultclass=CountingResult,
                                     stream=sys.stdout)
    result = runner.run(suite)
    by_reason = collections.Counter(reason for _, reason in result.skipped)
    print(f'\nCPython asyncio tests on tulip.EventLoop: {result.testsRun} run, '
          f'{result.passed} passed, {len(result.failures) + len(result.errors)} failed, '
          f'{len(result.skipped)} skipped')
    for reason, count in by_reason.most_common():
        print(f'  skipped {count:3d}: {reason}')
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
