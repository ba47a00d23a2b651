"""asyncio's Handle and TimerHandle as tulip's loop queues them in debug mode.

Outside debug mode call_soon/call_later/call_at make tulip._core's C handles.
In debug mode (and for signal handlers) the loop queues these subclasses of
asyncio's own classes instead, which add what asyncio's loop does around a
callback in debug mode (BaseEventLoop._run_once): the handle being run is
loop._current_handle (the exception handler prints where it was created), and a
callback that takes slow_callback_duration or longer is logged as
"Executing <Handle ...> took 0.123 seconds". Descriptor watches and
call_soon_threadsafe callbacks are made of these only when made in debug mode:
outside it a readiness event must not pay for the extra frame.
"""

from asyncio import base_events, events
from asyncio.log import logger


class _TimedRun:
    __slots__ = ()

    def _run(self):
        loop = self._loop
        if not loop._debug:
            return super()._run()
        try:
            loop._current_handle = self
            started = loop.time()
            super()._run()
            took = loop.time() - started
            if took >= loop.slow_callback_duration:
                logger.warning('Executing %s took %.3f seconds',
                               base_events._format_handle(self), took)
        finally:
            loop._current_handle = None


class Handle(_TimedRun, events.Handle):
    """asyncio's Handle, its run timed in debug mode."""

    __slots__ = ()


class TimerHandle(_TimedRun, events.TimerHandle):
    """asyncio's TimerHandle, its run timed in debug mode, plus the C++ timer it is queued as."""

    __slots__ = ('_tulip_timer',)
