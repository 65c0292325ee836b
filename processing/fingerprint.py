"""Perceptual fingerprints of clips and the batch-wide search for duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from .config import Quality


def phash(gray: np.ndarray) -> int:
    """64-bit perceptual hash: signs of the 8x8 lowest DCT terms against their median.

    Survives rescaling, re-encoding, brightness and mild blur; a mirrored or
    different picture lands ~32 bits away.
    """
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def duplicates(
    fingerprints: Mapping[str, Sequence[int]], q: Quality
) -> dict[str, tuple[float, list[str]]]:
    """For each clip, the best share of its frames matching another clip, and which clips match.

    A frame matches when some frame of the other clip lies within
    ``q.duplicate_bits`` bits; the share is taken over the clip with fewer
    hashes, so a trimmed copy matches its original. Clips are compared all at
    once with numpy (a thousand clips take about a second).
    """
    ids = [i for i, fp in fingerprints.items() if fp]
    result: dict[str, tuple[float, list[str]]] = {i: (0.0, []) for i in fingerprints}
    if len(ids) < 2:
        return result
    width = max(len(fingerprints[i]) for i in ids)
    table = np.zeros((len(ids), width), np.uint64)
    valid = np.zeros((len(ids), width), bool)
    for row, i in enumerate(ids):
        fp = np.array([int(h) for h in fingerprints[i]], np.uint64)
        table[row, : len(fp)], valid[row, : len(fp)] = fp, True
    counts = valid.sum(axis=1)
    for a in range(len(ids)):
        # bits[b, i, j]: distance from a's hash i to b's hash j.
        bits = np.bitwise_count(table[a][None, :, None] ^ table[:, None, :])
        close = (bits <= q.duplicate_bits) & valid[a][None, :, None] & valid[:, None, :]
        a_matched = close.any(axis=2).sum(axis=1)  # a's frames found in b
        b_matched = close.any(axis=1).sum(axis=1)  # b's frames found in a
        share = np.maximum(a_matched / counts[a], b_matched / counts)
        share[a] = 0.0
        best = float(share.max())
        hits = [ids[b] for b in np.flatnonzero(share >= q.duplicate_fraction)]
        result[ids[a]] = (round(best, 4), hits)
    return result


def spread(items: list[int], k: int) -> list[int]:
    """Up to ``k`` of ``items``, evenly spaced."""
    return [items[i] for i in evenly(len(items), k)]


def evenly(n: int, k: int) -> list[int]:
    """Up to ``k`` indexes spread evenly over ``range(n)``."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
