"""`DigestSet`: which strings (document ids) a run has met, in 12-24 bytes each instead of the 100 or so of a
Python set of the strings, so that the id bookkeeping of a run over millions of documents stays small.

Each key is kept as a 64-bit BLAKE2b digest in a numpy array (open addressing, linear probing, at most two
thirds full). What is traded: two different keys sharing a digest would read as one, so a duplicate could be
reported where there is none; among n keys that happens with probability about n² / 2^65 (1 in 28,000 for the
36 million PubMed ids). The keys themselves are not kept.
"""

from __future__ import annotations

import hashlib

import numpy as np

EMPTY = 0  # the value of a free slot (a key whose digest is 0 is stored as 1)
GROW_SLICE = 1 << 14  # slots placed again at a time when the table grows


def digest(*parts: str) -> int:
    """A 64-bit digest of one string or of a tuple of strings (0xff, which UTF-8 never holds, separates them)."""
    data = b"\xff".join(part.encode("utf-8", "surrogatepass") for part in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") or 1


class DigestSet:
    """A set of strings (or of tuples of strings) kept as 64-bit digests: `add` says whether a key was new."""

    def __init__(self, capacity: int = 1024):
        self.slots = np.zeros(capacity, dtype=np.uint64)  # capacity: a power of two
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: str | tuple[str, ...]) -> bool:
        value = _digest_of(key)
        return int(self.slots[self._slot(value)]) == value

    def add(self, key: str | tuple[str, ...]) -> bool:
        """Add a key; True when it was not in the set."""
        value = _digest_of(key)
        slot = self._slot(value)
        if int(self.slots[slot]) == value:
            return False
        self.slots[slot] = value
        self.count += 1
        if 3 * self.count > 2 * len(self.slots):
            self._grow()
        return True

    def _slot(self, value: int) -> int:
        """The slot holding `value`, or the free slot where it goes."""
        mask = len(self.slots) - 1
        slot = value & mask
        while True:
            held = int(self.slots[slot])
            if held == value or held == EMPTY:
                return slot
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        """Twice the slots, every key placed again, a slice at a time (so the copies stay small)."""
        old = self.slots
        self.slots = np.zeros(2 * len(old), dtype=np.uint64)
        for start in range(0, len(old), GROW_SLICE):
            values = old[start : start + GROW_SLICE]
            self._place(values[values != EMPTY])

    def _place(self, values: np.ndarray) -> None:
        """Put distinct new values in their slots: a few rounds of numpy, not a loop per key. Of the values whose
        target slot is free, the first per target takes it; the others probe the next slot."""
        mask = np.uint64(len(self.slots) - 1)
        targets = values & mask
        while len(values):
            free = self.slots[targets.astype(np.int64)] == EMPTY
            _, first = np.unique(targets[free], return_index=True)
            placed = np.flatnonzero(free)[first]
            self.slots[targets[placed].astype(np.int64)] = values[placed]
            waiting = np.ones(len(values), dtype=bool)
            waiting[placed] = False
            values, targets = values[waiting], (targets[waiting] + np.uint64(1)) & mask


def _digest_of(key: str | tuple[str, ...]) -> int:
    return digest(*key) if isinstance(key, tuple) else digest(key)
