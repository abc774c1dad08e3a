"""Autoscaling of server nodes, as Kubernetes' Horizontal Pod Autoscaler does it.

Every ``scale_interval_s`` the autoscaler looks at the node's utilization over
the last interval and computes ``desired = ceil(ready × utilization / target)``
(no change while the ratio is within ±10 % of 1), clamped to
``[min_replicas, max_replicas]``. It scales out at once, but scales in only to
the highest count it wanted during the last ``scale_down_delay_s`` (HPA's
stabilization window). A new replica boots for ``boot_time_s`` before the load
balancer sends it traffic; a removed replica stops getting new requests and
leaves once its last request is done (connection draining).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from .compiler import Scaler

TOLERANCE = 0.1


class Autoscaler:
    def __init__(self, sc: Scaler, now: float) -> None:
        self.sc = sc
        self.next_decision = (math.floor(now / sc.interval_s + 1e-9) + 1) * sc.interval_s
        self.history: deque[tuple[float, int]] = deque()

    @property
    def slots(self) -> np.ndarray:
        return np.arange(self.sc.first, self.sc.end)

    def desired(self, now: float, current: int, ready: int, utilization: float) -> int:
        """The replica count to have from now on."""
        sc = self.sc
        ratio = utilization / sc.target
        if ready == 0 or abs(ratio - 1.0) <= TOLERANCE or not math.isfinite(ratio):
            raw = current
        else:
            raw = math.ceil(ready * ratio - 1e-9)
        raw = min(max(raw, sc.minimum), sc.maximum)
        self.history.append((now, raw))
        while self.history and self.history[0][0] < now - sc.down_delay_s - 1e-9:
            self.history.popleft()
        if raw >= current:
            return raw
        return max(min(current, max(d for _, d in self.history)), sc.minimum)
