"""The rules every speed comparison with `fer` follows (benchmarks/fer_side.py, issue 47):
windows of at least the time asked, sides interleaved ABBA, the ratio taken per round."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fer_side


def test_sides_alternate_abba_and_the_ratio_is_per_round():
    order, rates = [], {"ours": iter([10, 20, 30, 40, 50]), "fer": iter([10, 10, 10, 10, 25])}

    def side(name):
        def window() -> float:
            order.append(name)
            return next(rates[name])

        return window

    r = fer_side.interleave(side("ours"), side("fer"), rounds=5)
    assert order == ["ours", "fer", "fer", "ours", "ours", "fer", "fer", "ours", "ours", "fer"]
    # per-round ratios 1, 2, 3, 4, 2: a drifting machine moves both sides of a round
    assert (r.median, r.low, r.high, r.ours, r.theirs) == (2.0, 1.0, 4.0, 30, 10)
    assert str(r) == "2.00x (1.00-4.00)"


def test_a_window_lasts_at_least_its_seconds_and_counts_items():
    crops = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    seen = []
    step = fer_side.crops_step(lambda x: seen.append(x[:, 0, 0].tolist()), crops, batch=4)
    start = time.perf_counter()
    rate = fer_side.window(step, 0.05)
    elapsed = time.perf_counter() - start
    assert elapsed >= 0.05 and rate * elapsed == pytest.approx(len(seen) * 4, rel=0.01)
    assert seen[:3] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]  # the same crops, cycled
