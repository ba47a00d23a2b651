"""tulip: an asyncio event loop on tulip's C++ core.

    import tulip
    tulip.run(main())          # as asyncio.run(main()), on tulip's loop
    tulip.install()            # make tulip the default loop of asyncio.run()

or, for a script that uses asyncio and nothing else:

    python3 -m tulip script.py [args...]
"""

import asyncio as _asyncio

from . import _core
from ._loop import EventLoop

__all__ = ('EventLoop', 'EventLoopPolicy', 'new_event_loop', 'install', 'run')

__version__ = _core.library_version


def new_event_loop():
    """A new tulip.EventLoop."""
    return EventLoop()


class EventLoopPolicy(_asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy, making tulip loops."""

    def _loop_factory(self):
        return new_event_loop()


def install():
    """Makes tulip's loop the one asyncio.run() and new_event_loop() create."""
    _asyncio.set_event_loop_policy(EventLoopPolicy())


def run(main, *, debug=None):
    """asyncio.run(main) on a new tulip loop."""
    with _asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
