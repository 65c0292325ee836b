"""Splitting a long social rendition into parts: order kept, each under the limit, fewest parts."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from processing.config import load_config
from processing.social.parts import plan_parts

CFG = load_config()
LIMIT, TITLE, END = CFG.social.max_part_seconds, CFG.social.part_title_seconds, 8.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(1.0, 120.0), max_size=40))
def test_parts_keep_order_stay_under_the_limit_and_are_fewest(clips: list[float]) -> None:
    parts = plan_parts(clips, LIMIT, TITLE, END)
    assert [i for p in parts for i in p.clips] == list(range(len(clips)))
    assert all(p.count == len(parts) and p.n == k + 1 for k, p in enumerate(parts))
    for p in parts:
        cards = END + (TITLE if len(parts) > 1 else 0.0)
        assert abs(p.seconds - cards - sum(clips[i] for i in p.clips)) < 1e-6
        # Only a clip longer than the room a part has may make a part too long, alone.
        assert p.seconds <= LIMIT + 1e-6 or (p.over and len(p.clips) == 1)
    room = LIMIT - TITLE - END
    for a, b in itertools.pairwise(parts):
        # Fewest parts: the next part's first clip did not fit into this one.
        assert sum(clips[i] for i in a.clips) + clips[b.clips[0]] > room


def test_part_titles_in_each_language_and_no_split_when_it_fits() -> None:
    parts = plan_parts([40.0] * 5, LIMIT, TITLE, END)
    assert [p.clips for p in parts] == [(0, 1), (2, 3), (4,)]
    assert parts[1].label(CFG.cards["en"]) == "Part 2/3"
    assert parts[2].label(CFG.cards["ru"]) == "Часть 3/3"
    whole = plan_parts([40.0, 41.0], LIMIT, TITLE, END)
    assert len(whole) == 1 and whole[0].seconds == 89.0
    assert plan_parts([40.0] * 5, 0, TITLE, END)[0].clips == (0, 1, 2, 3, 4)
