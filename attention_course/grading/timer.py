"""Nested wall-clock limits with ``SIGALRM``, shared by the checker and the sandboxed worker.

Both processes run a call under a time limit while another limit may already be running (a call of
the student's function served while one of the checker's callbacks waits, and the other way round):
the inner limit then never ends later than the outer one, and the outer one keeps running afterwards
with the time it has left. Standard library only: the sandboxed worker imports this module before
its audit hook is installed (see :mod:`.sandbox`).
"""
from __future__ import annotations

import signal
import time


class Alarm:
    """A context manager: ``SIGALRM`` once ``seconds`` of wall-clock time have passed (main thread only).

    On entry it pauses the limit already running (if any) and sets the alarm to the smaller of
    ``seconds`` and what that outer limit had left (at least 0.01 s). On exit it clears the alarm,
    puts back the previous ``SIGALRM`` handler if ``handler`` replaced it, and restarts the outer
    limit with what it has left (at least 0.001 s). What the alarm raises is up to the handler in
    place: ``handler`` for the time of the block, else the one the process installed.

    Args:
        seconds: the limit of the block.
        handler: a ``SIGALRM`` handler for the time of the block, or None to keep the current one.

    Raises:
        Whatever the handler raises when the alarm goes off inside the block.
    """

    def __init__(self, seconds: float, handler=None):
        self.seconds, self.handler = float(seconds), handler
        self.previous, self.outer, self.started = None, 0.0, 0.0

    def __enter__(self) -> Alarm:
        """Start the limit (pausing and shortening to the outer one); return this alarm."""
        if self.handler is not None:
            self.previous = signal.signal(signal.SIGALRM, self.handler)
        self.outer, _ = signal.setitimer(signal.ITIMER_REAL, 0)
        self.started = time.monotonic()
        limit = self.seconds if not self.outer else min(self.seconds, self.outer)
        signal.setitimer(signal.ITIMER_REAL, max(0.01, limit))
        return self

    def __exit__(self, *exc_info) -> bool:
        """Stop the limit, restore the handler and the outer limit; return False (exceptions go on)."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self.handler is not None:
            signal.signal(signal.SIGALRM, self.previous)
        if self.outer:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, self.outer - (time.monotonic() - self.started)))
        return False
