"""Health checks (heartbeats) of a load balancer's backends.

Every ``interval`` the balancer checks all its backends at once. A backend is
taken out after ``fall`` failed checks in a row and put back after ``rise``
passed checks in a row (HAProxy's ``inter``/``fall``/``rise``). Until then a
dead backend keeps receiving requests, which fail. Detection therefore takes
between ``(fall − 1) × interval`` and ``fall × interval`` after the failure.
"""
from __future__ import annotations

import numpy as np


class HealthChecks:
    def __init__(self, n_backends: int, interval: float, fall: int, rise: int, first_check: float) -> None:
        self.interval = interval
        self.fall = fall
        self.rise = rise
        self.believed_up = np.ones(n_backends, dtype=bool)
        self.misses = np.zeros(n_backends, dtype=np.int64)
        self.passes = np.zeros(n_backends, dtype=np.int64)
        self.next_check = first_check

    def steady(self, really_up: np.ndarray) -> bool:
        """No check can change anything until some backend goes up or down."""
        return bool((self.believed_up == really_up).all())

    def skip_to(self, now: float) -> None:
        """Move the next check past ``now`` on the same grid, changing nothing."""
        if self.next_check <= now:
            k = np.floor((now - self.next_check) / self.interval) + 1
            self.next_check += k * self.interval

    def check(self, really_up: np.ndarray) -> bool:
        """Run one round of checks; returns True when some backend changed state."""
        self.misses = np.where(really_up, 0, self.misses + 1)
        self.passes = np.where(really_up, self.passes + 1, 0)
        before = self.believed_up.copy()
        self.believed_up[self.misses >= self.fall] = False
        self.believed_up[self.passes >= self.rise] = True
        self.next_check += self.interval
        return bool((before != self.believed_up).any())
