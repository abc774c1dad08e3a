"""The generator of each (seed, stream, second), made cheaply and exactly as numpy makes it.

Arrivals draw from ``Generator(PCG64(SeedSequence([seed, stream, block])))``, one per
client and simulated second, so that any slicing of the run gives the same numbers.
Building those objects costs ~18 µs (SeedSequence's hashing is Python/C glue), which
for a client of 1,000 req/s is a fifth of all the work of its arrivals.

:class:`BlockSeeds` computes the same 128-bit PCG64 states for many seconds at once
(numpy's SeedSequence hash, vectorised over the seconds in uint32 arithmetic, then
PCG64's ``srandom``) and sets them on one reused bit generator (~2 µs). It checks
itself against numpy on first use; should numpy ever seed differently, every stream
is built the slow way instead (the same numbers, only slower).
"""
from __future__ import annotations

import numpy as np

# numpy/random/bit_generator.pyx (SeedSequence) and pcg64.h (PCG64's seeding)
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4
_M32 = 0xFFFFFFFF
_M128 = (1 << 128) - 1
_PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341
CHUNK = 256         # seconds whose states are computed together
_U32 = np.uint32


def _words(n: int) -> list[int]:
    """An int as SeedSequence reads it: 32-bit words, least significant first ([0] for 0)."""
    if n == 0:
        return [0]
    out = []
    while n:
        out.append(n & _M32)
        n >>= 32
    return out


def _hash_consts(count: int, init: int, mult: int) -> list[tuple[int, int]]:
    """(xor, multiplier) of the k-th hashmix call: its hash constant before and after the update."""
    out, h = [], init
    for _ in range(count):
        nxt = (h * mult) & _M32
        out.append((h, nxt))
        h = nxt
    return out


def seed_words(seed: int, stream: int, blocks: np.ndarray) -> np.ndarray:
    """SeedSequence([seed, stream, block]).generate_state(4, uint64) for each block
    (0 ≤ block < 2**32), as a (len(blocks), 4) uint64 array."""
    prefix = _words(seed) + _words(stream)
    n_ent = len(prefix) + 1
    n_calls = _POOL + _POOL * (_POOL - 1) + max(n_ent - _POOL, 0) * _POOL
    hc = np.array(_hash_consts(n_calls, _INIT_A, _MULT_A), dtype=_U32)   # (xor, multiplier) per call
    b = np.asarray(blocks, dtype=np.uint64).astype(_U32)
    s16 = _U32(16)
    with np.errstate(over="ignore"):
        ent = np.zeros((max(n_ent, _POOL), len(b)), dtype=_U32)
        ent[:len(prefix)] = np.array(prefix, dtype=_U32)[:, None]
        ent[len(prefix)] = b
        v = (ent[:_POOL] ^ hc[:_POOL, :1]) * hc[:_POOL, 1:]
        mixer = v ^ (v >> s16)                 # the pool: hashmix of the first four words
        k = _POOL
        for src in range(_POOL):               # mix every word into every other one
            dst = [d for d in range(_POOL) if d != src]
            v = (mixer[src] ^ hc[k:k + 3, :1]) * hc[k:k + 3, 1:]
            r = mixer[dst] * _U32(_MIX_L) - (v ^ (v >> s16)) * _U32(_MIX_R)
            mixer[dst] = r ^ (r >> s16)
            k += 3
        for src in range(_POOL, n_ent):        # entropy beyond the pool, into every word
            v = (ent[src] ^ hc[k:k + _POOL, :1]) * hc[k:k + _POOL, 1:]
            r = mixer * _U32(_MIX_L) - (v ^ (v >> s16)) * _U32(_MIX_R)
            mixer = r ^ (r >> s16)
            k += _POOL
        gc = np.array(_hash_consts(2 * _POOL, _INIT_B, _MULT_B), dtype=_U32)
        v = (mixer[[0, 1, 2, 3, 0, 1, 2, 3]] ^ gc[:, :1]) * gc[:, 1:]
        out = (v ^ (v >> s16)).astype(np.uint64)   # generate_state(8, uint32), word by word
    return (out[0::2] | (out[1::2] << np.uint64(32))).T


def pcg64_state(words: list[int]) -> tuple[int, int]:
    """PCG64's (state, inc) after ``pcg64_set_seed`` with the four seed words."""
    s = (words[0] << 64) | words[1]
    inc = (((words[2] << 64) | words[3]) << 1 | 1) & _M128
    return (((inc + s) & _M128) * _PCG_MULT + inc) & _M128, inc


def _mul64(a: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """The 128-bit products a × b (uint64 arrays times a 64-bit constant) as (high, low)."""
    m = np.uint64(_M32)
    s32 = np.uint64(32)
    a0, a1 = a & m, a >> s32
    b0, b1 = np.uint64(b & _M32), np.uint64(b >> 32)
    p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
    mid = (p00 >> s32) + (p01 & m) + (p10 & m)
    return a1 * b1 + (p01 >> s32) + (p10 >> s32) + (mid >> s32), (p00 & m) | (mid << s32)


def pcg64_rows(words: np.ndarray) -> np.ndarray:
    """:func:`pcg64_state` of each row of seed words, vectorised: rows of (state low,
    state high, inc low, inc high) 64-bit words."""
    one, s63 = np.uint64(1), np.uint64(63)
    with np.errstate(over="ignore"):
        s_hi, s_lo, i_hi, i_lo = words.T
        inc_hi, inc_lo = (i_hi << one) | (i_lo >> s63), (i_lo << one) | one
        a_lo = inc_lo + s_lo
        a_hi = inc_hi + s_hi + (a_lo < inc_lo)
        p_hi, p_lo = _mul64(a_lo, _PCG_MULT & ((1 << 64) - 1))
        p_hi = p_hi + a_lo * np.uint64(_PCG_MULT >> 64) + a_hi * np.uint64(_PCG_MULT & ((1 << 64) - 1))
        st_lo = p_lo + inc_lo
        st_hi = p_hi + inc_hi + (st_lo < p_lo)
    return np.stack([st_lo, st_hi, inc_lo, inc_hi], axis=1)


def numpy_state(seed: int, stream: int, block: int) -> tuple[int, int]:
    """(state, inc) of numpy's own PCG64(SeedSequence([seed, stream, block]))."""
    st = np.random.PCG64(np.random.SeedSequence([seed, stream, block])).state["state"]
    return st["state"], st["inc"]


class BlockSeeds:
    """The PCG64 states of one client's seconds, ``CHUNK`` seconds at a time; ``use(block)``
    puts that second's state on :attr:`bit_generator` (whose :attr:`generator` draws)."""

    verified: bool | None = None    # the vectorised seeding matches numpy (checked once per process)

    def __init__(self, seed: int, stream: int) -> None:
        self.seed, self.stream = int(seed), int(stream)
        self.bit_generator = np.random.PCG64(0)
        self.generator = np.random.Generator(self.bit_generator)
        self._chunk = -1
        self._rows = np.zeros((0, 4), dtype=np.uint64)
        self._dict = {"bit_generator": "PCG64", "state": {"state": 0, "inc": 0}, "has_uint32": 0, "uinteger": 0}
        self.fast = self.seed >= 0 and self.stream >= 0 and _self_check()
        self._mem = _state_memory(self.bit_generator) if self.fast else None

    def state(self, block: int) -> tuple[int, int]:
        """(state, inc) of the second's PCG64, as numpy seeds it."""
        lo, hi, ilo, ihi = self._row(block).tolist()
        return lo | hi << 64, ilo | ihi << 64

    def _row(self, block: int) -> np.ndarray:
        if not self.fast or not 0 <= block < 2**32:
            return _as_row(*numpy_state(self.seed, self.stream, block))
        chunk = block // CHUNK
        if chunk != self._chunk:
            first = chunk * CHUNK
            blocks = np.arange(first, min(first + CHUNK, 2**32), dtype=np.int64)
            self._rows = pcg64_rows(seed_words(self.seed, self.stream, blocks))
            self._chunk = chunk
        return self._rows[block - self._chunk * CHUNK]

    def use(self, block: int) -> np.random.Generator:
        """The generator of ``block``, fresh (as ``Generator(PCG64(SeedSequence(...)))``)."""
        row = self._row(block)
        if self._mem is not None:   # straight into the bit generator's state (checked layout)
            self._mem[0][:] = row
            self._mem[1][:] = 0
        else:
            d = self._dict
            lo, hi, ilo, ihi = row.tolist()
            d["state"]["state"], d["state"]["inc"] = lo | hi << 64, ilo | ihi << 64
            self.bit_generator.state = d
        return self.generator


def _as_row(state: int, inc: int) -> tuple[int, int, int, int]:
    m = (1 << 64) - 1
    return state & m, state >> 64, inc & m, inc >> 64


def _state_memory(bg: np.random.PCG64) -> tuple[np.ndarray, np.ndarray] | None:
    """Arrays over ``bg``'s C state (128-bit state and increment, low words first; the
    buffered 32-bit word and its flag), if writing them is exactly like setting ``bg.state``
    (checked here); else None (the ``state`` property then, ~4 µs slower)."""
    try:
        import ctypes
        addr = bg.ctypes.state_address
        words = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(ctypes.c_void_p.from_address(addr).value))
        flags = np.ctypeslib.as_array((ctypes.c_uint32 * 2).from_address(addr + ctypes.sizeof(ctypes.c_void_p)))
        ref = np.random.PCG64(np.random.SeedSequence([7, 11, 13]))
        ref.random_raw(3)
        g = np.random.Generator(bg)
        g.integers(0, 1000)                    # leaves a buffered 32-bit word behind
        words[:] = _as_row(ref.state["state"]["state"], ref.state["state"]["inc"])
        flags[:] = 0
        same = (bg.state == ref.state and (g.integers(0, 1000, 5) == np.random.Generator(ref).integers(0, 1000, 5)).all()
                and bg.state == ref.state)
        return (words, flags) if same else None
    except Exception:   # noqa: BLE001 - no ctypes, another layout: the property
        return None


def _self_check() -> bool:
    if BlockSeeds.verified is None:
        cases = [(0, 0), (1, 344172009), (2**32 + 5, 7), (123456789012345678901234567890, 2**31 - 1)]
        blocks = np.array([0, 1, 63, 2**32 - 1], dtype=np.int64)
        try:
            BlockSeeds.verified = all(pcg64_state(w) == numpy_state(s, t, int(b))
                                      for s, t in cases for b, w in zip(blocks, seed_words(s, t, blocks).tolist()))
        except Exception:   # noqa: BLE001 - any surprise: numpy's own way
            BlockSeeds.verified = False
    return BlockSeeds.verified
