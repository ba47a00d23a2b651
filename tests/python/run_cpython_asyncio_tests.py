"""CPython's own asyncio tests (Debian's libpython3.11-testsuite, test.test_asyncio)
bound to tulip's loop the way CPython binds them to its selector loop.

Each mixin gets a subclass whose loop factory makes a tulip.EventLoop. Cases that
exercise what tulip's loop does not have are skipped, each with its reason (the
SKIPS table); the counts -- passed, failed, skipped by reason -- are printed at
the end. Exit status 0 when nothing failed.

Usage: python3 run_cpython_asyncio_tests.py [-v] [unittest names...]
"""

from __future__ import annotations

import asyncio
import collections
import sys
import unittest

import tulip

try:
    from test.test_asyncio import test_buffered_proto
    from test.test_asyncio import test_events
    from test.test_asyncio import test_sendfile
    from test.test_asyncio import test_server
    from test.test_asyncio import test_sock_lowlevel
    from test.test_asyncio import test_sslproto
    from test.test_asyncio import test_streams
    from test.test_asyncio import test_subprocess
    from test.test_asyncio import utils as test_utils
except ImportError as error:
    sys.exit(f'CPython\'s test suite is missing ({error}); Debian: apt-get install '
             'libpython3.11-testsuite')

# Reasons, named once.
NATIVE_SENDFILE = ('loop.sendfile on a transport: os.sendfile not wired up yet '
                   '(asyncio\'s read-and-write fallback is used)')
SELECTOR = 'inspects the selector loop\'s internals (selector, _ready, self-pipe)'

# test id suffix -> reason
SKIPS = {
    'test_internal_fds': SELECTOR,
    'test_timeout_rounding': SELECTOR,
    'test_sendfile_force_unsupported_native': NATIVE_SENDFILE,
    'test_sendfile_not_supported': NATIVE_SENDFILE,
    'test_sendfile_prevents_bare_write': NATIVE_SENDFILE,
}


def tulip_loop():
    return tulip.new_event_loop()


class TulipEventLoopTests(test_events.EventLoopTestsMixin, test_events.SubprocessTestsMixin,
                          test_utils.TestCase):
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


class TulipSendfileTests(test_sendfile.SendfileTestsBase, test_utils.TestCase):
    def create_event_loop(self):
        return tulip_loop()


class TulipStartTLSTests(test_sslproto.BaseStartTLS, unittest.TestCase):
    def new_loop(self):
        return tulip_loop()


class TulipSubprocessTests(test_subprocess.SubprocessMixin, test_utils.TestCase):
    """tulip's loop watches its children itself (a pidfd): no child watcher."""

    def setUp(self):
        super().setUp()
        self.loop = tulip_loop()
        self.set_event_loop(self.loop)


class TulipStreamTests(test_streams.StreamTests):
    """StreamTests makes its loops with asyncio.new_event_loop(): under tulip's
    policy those are tulip loops."""

    def setUp(self):
        self._previous_policy = asyncio.get_event_loop_policy()
        tulip.install()
        super().setUp()
        assert isinstance(self.loop, tulip.EventLoop)

    def tearDown(self):
        super().tearDown()
        asyncio.set_event_loop_policy(self._previous_policy)


CLASSES = (TulipEventLoopTests, TulipStartServerTests, TulipBufferedProtocolTests,
           TulipSockTests, TulipSendfileTests, TulipStartTLSTests, TulipStreamTests,
           TulipSubprocessTests)


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
