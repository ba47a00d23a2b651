"""Unix signal handlers for tulip.EventLoop, as asyncio's Unix loop has them.

A signal's C-level handler (Python's) writes the signal number into a socket
pair (signal.set_wakeup_fd); the loop watches the other end with add_reader,
so a signal wakes a loop that is blocked in the kernel, and the handlers run
as ordinary callbacks. While the loop runs in the main thread the wake-up
descriptor is installed even without handlers, so that Ctrl-C interrupts the
wait (KeyboardInterrupt comes out of run_forever, as with asyncio).
"""

import signal
import socket
import threading
from asyncio import coroutines

from ._handles import Handle


def _noop_handler(signum, frame):
    # Installed for handled signals: the work is done by the wake-up write.
    pass


class SignalMixin:
    def _init_signals(self):
        self._signal_handlers = {}
        self._self_reader = None
        self._self_writer = None
        self._previous_wakeup_fd = None

    def _make_self_pipe(self):
        if self._self_reader is not None:
            return
        self._self_reader, self._self_writer = socket.socketpair()
        self._self_reader.setblocking(False)
        self._self_writer.setblocking(False)
        self.add_reader(self._self_reader.fileno(), self._read_signals)

    def _read_signals(self):
        while True:
            try:
                data = self._self_reader.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                if signum:
                    self._handle_signal(signum)

    def _handle_signal(self, signum):
        handle = self._signal_handlers.get(signum)
        if handle is None:
            return
        if handle._cancelled:
            self.remove_signal_handler(signum)
        else:
            self.call_soon(handle._callback, *handle._args)

    def _install_wakeup_fd(self):
        if threading.current_thread() is not threading.main_thread():
            return False
        self._make_self_pipe()
        try:
            previous = signal.set_wakeup_fd(self._self_writer.fileno())
        except (ValueError, OSError):
            return False
        if previous not in (-1, self._self_writer.fileno()):
            # Someone else's descriptor: leave it in place.
            signal.set_wakeup_fd(previous)
            return False
        self._previous_wakeup_fd = previous
        return True

    def _remove_wakeup_fd(self):
        if self._signal_handlers:
            return  # handlers still need it
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError):
            pass

    def _check_signal(self, sig):
        if not isinstance(sig, int):
            raise TypeError(f'sig must be an int, not {sig!r}')
        if sig not in signal.valid_signals():
            raise ValueError(f'invalid signal number {sig}')

    def add_signal_handler(self, sig, callback, *args):
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError('coroutines cannot be used with add_signal_handler()')
        self._check_signal(sig)
        self._check_closed()
        self._make_self_pipe()
        try:
            signal.set_wakeup_fd(self._self_writer.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        self._signal_handlers[sig] = Handle(callback, args, self, None)
        try:
            signal.signal(sig, _noop_handler)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError):
                    pass
            if exc.errno == 22:  # EINVAL
                raise RuntimeError(f'sig {sig:d} cannot be caught')
            raise

    def remove_signal_handler(self, sig):
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == 22:
                raise RuntimeError(f'sig {sig:d} cannot be caught')
            raise
        if not self._signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError):
                pass
        return True

    def _close_signals(self):
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        if self._self_reader is not None:
            self.remove_reader(self._self_reader.fileno())
            self._self_reader.close()
            self._self_writer.close()
            self._self_reader = self._self_writer = None
