"""Counter-based randomness: every random choice is a function of the run's
seed, the request and what is being decided, never of how the run was sliced.

Each request is born with a 64-bit ``key`` (drawn from a generator seeded by
the run's seed, the client and the simulated second). Later draws hash that
key with the request's hop count and a *salt* naming the decision, so the same
file and seed give the same numbers whether the run advances in one call, in
GUI slices, or with a pause in the middle.
"""
from __future__ import annotations

import zlib

import numpy as np

(SERVICE, SESSION_READ, ROUTE, CACHE_HIT, PICK, PICK2, REPLICA, ENTRY, TIE, FORGE, CACHE_STALE, BROWSER,
 NOT_MODIFIED, DB_READ, APPLY, DB_WRITE, INSERT, BROWSER_STALE) = range(1, 19)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0xD6E8FEB86659FD93)
_HOP = np.uint64(0xA0761D6478BD642F)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective, well-mixed 64-bit hash."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


def uniform(key: np.ndarray, hop: np.ndarray | int, salt: int) -> np.ndarray:
    """Uniform numbers in [0, 1), one per key."""
    with np.errstate(over="ignore"):
        h = mix64(np.asarray(key, dtype=np.uint64) ^ (np.uint64(salt) * _SALT)
                  ^ (np.asarray(hop, dtype=np.uint64) * _HOP))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def exponential(key: np.ndarray, hop: np.ndarray | int, salt: int) -> np.ndarray:
    """Standard exponential numbers (mean 1), one per key."""
    return -np.log1p(-uniform(key, hop, salt))


def named_uniform(seed: int, name: str) -> float:
    """A uniform number in [0, 1) for the run's seed and a node's id (e.g. the phase of a
    balancer's health checks): neither the order of the nodes in the file nor the edits
    made before change it."""
    with np.errstate(over="ignore"):
        h = mix64(mix64(np.array([seed % 2**64], dtype=np.uint64)) ^ np.uint64(zlib.crc32(name.encode())))
    return float(h[0] >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def block_generator(seed: int, stream: int, block: int) -> np.random.Generator:
    """A generator for one (stream, block) pair, e.g. one client's arrivals in one second."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, block])))   # = default_rng, faster
