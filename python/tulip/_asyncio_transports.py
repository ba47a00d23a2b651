"""Datagram, pipe and subprocess transports: asyncio's own, on tulip's watches.

tulip's C++ core has UDP, pipes and child processes, but the extension does not
bind them yet. Until it does, these methods of tulip.EventLoop use asyncio's
pure-Python transports (selector_events._SelectorDatagramTransport,
unix_events._UnixReadPipeTransport, _UnixWritePipeTransport,
_UnixSubprocessTransport), which need nothing of a loop but call_soon and the
descriptor watches (_add_reader/_add_writer), here tulip's. A child's exit is
watched through a pidfd (os.pidfd_open) on the same watches, as asyncio's
PidfdChildWatcher does, so no child watcher thread or policy is involved.
"""

import os
import weakref
from asyncio import selector_events, unix_events
from asyncio.log import logger


class AsyncioTransportsMixin:
    def _init_asyncio_transports(self):
        # asyncio's selector transports register themselves here, by descriptor.
        self._transports = weakref.WeakValueDictionary()

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None, extra=None):
        return selector_events._SelectorDatagramTransport(self, sock, protocol, address, waiter,
                                                          extra)

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return unix_events._UnixReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return unix_events._UnixWritePipeTransport(self, pipe, protocol, waiter, extra)

    async def _make_subprocess_transport(self, protocol, args, shell, stdin, stdout, stderr,
                                         bufsize, extra=None, **kwargs):
        waiter = self.create_future()
        transport = unix_events._UnixSubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize, waiter=waiter,
            extra=extra, **kwargs)
        self._watch_child_exit(transport)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        return transport

    def _watch_child_exit(self, transport):
        pid = transport.get_pid()
        pidfd = os.pidfd_open(pid)
        self._add_reader(pidfd, self._child_exited, pidfd, pid, transport)

    def _child_exited(self, pidfd, pid, transport):
        self._remove_reader(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # Reaped elsewhere (a waitpid(-1) of the program): as asyncio's watchers.
            returncode = 255
            logger.warning('child process pid %d exit status already read: '
                           ' will report returncode 255', pid)
        else:
            returncode = os.waitstatus_to_exitcode(status)
        # One more turn of the loop first, as asyncio's: output the pipes
        # already hold is delivered before process_exited.
        self.call_soon(transport._process_exited, returncode)
