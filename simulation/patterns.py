"""Traffic patterns: how a client's rate varies over time (a multiplier of rate_rps)."""
from __future__ import annotations

import numpy as np

from .kinds import CLIENT
from .params import FormatError, object_with_defaults

PATTERN_PARAM = CLIENT.param("pattern")


def check_pattern(value: dict, where: str) -> None:
    """Cross-field checks that a single parameter's range cannot express."""
    full = object_with_defaults(PATTERN_PARAM, value)
    kind = full["type"]
    if kind == "ramp" and full["end_s"] < full["start_s"]:
        raise FormatError(f"{where}.end_s", f"must be ≥ start_s ({full['start_s']:g}), got {full['end_s']:g}")
    if kind == "steps":
        times, factors = full["times_s"], full["factors"]
        if len(times) != len(factors):
            raise FormatError(f"{where}.factors",
                              f"must have as many entries as times_s ({len(times)}), got {len(factors)}")
        if any(b <= a for a, b in zip(times, times[1:])):
            raise FormatError(f"{where}.times_s", "must be strictly increasing")


def rate_factor(pattern: dict, t: np.ndarray) -> np.ndarray:
    """The multiplier of rate_rps at times ``t`` (seconds), vectorised."""
    p = object_with_defaults(PATTERN_PARAM, pattern)
    t = np.asarray(t, dtype=float)
    kind = p["type"]
    if kind == "constant":
        return np.ones_like(t)
    if kind == "ramp":
        span = max(p["end_s"] - p["start_s"], 1e-12)
        frac = np.clip((t - p["start_s"]) / span, 0.0, 1.0)
        return p["from_factor"] + (p["to_factor"] - p["from_factor"]) * frac
    if kind == "spike":
        inside = (t >= p["at_s"]) & (t < p["at_s"] + p["duration_s"])
        return np.where(inside, p["factor"], 1.0)
    if kind == "diurnal":
        phase = 2 * np.pi * (t - p["peak_s"]) / p["period_s"]
        return 1.0 + p["amplitude"] * np.cos(phase)
    if kind == "steps":
        times = np.asarray(p["times_s"], dtype=float)
        factors = np.asarray(p["factors"], dtype=float)
        idx = np.searchsorted(times, t, side="right") - 1
        return np.where(idx >= 0, factors[np.clip(idx, 0, None)], 1.0)
    raise AssertionError(kind)
