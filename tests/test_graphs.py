"""The filter graphs ffmpeg-python builds mean what the hand-written strings meant.

Each representative plan is compiled with today's code and read back
(:mod:`tests.filtergraph`) next to the arguments recorded from the
hand-written filter strings before ffmpeg-python built them
(``tests/graph_golden.json``): same inputs, same filters with the same
parameters from the same sources, same output options. The clips and cards
of such plans were also compared byte for byte when the change was made.
"""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from processing import cards, frames, quality, runner
from processing.loudness import meter_filter
from tests import graphplans as gp
from tests.filtergraph import Meaning, get_token, parse_graph

GOLDEN = json.loads((Path(__file__).parent / "graph_golden.json").read_text("utf-8"))


@pytest.mark.parametrize("name", sorted(gp.PLANS))
def test_normalize_command_means_the_same(name: str) -> None:
    got = Meaning(gp.PLANS[name](gp.config()))
    assert got.described() == Meaning(GOLDEN[name]).described()


def _card_args(kind: str) -> list[str]:
    cfg = gp.config()
    duration = cfg.compilation.title_seconds if kind == "title" else cfg.compilation.end_seconds
    frames_ = max(1, round(duration * cfg.output.fps))
    args = cards.card_command(
        cfg, frames_ / cfg.output.fps, Path("/tmp/reel-card-1/card.ass"), Path("/CARDS/x.part")
    )
    return args


@pytest.mark.parametrize("kind", ["title", "end"])
def test_card_command_means_the_same(kind: str) -> None:
    golden = list(GOLDEN[f"card_{kind}"])
    golden[-1] = "file:/CARDS/x.part"  # the recorded part file had a random name
    got = _card_args(kind)
    assert got[-1] == "-y" and got[-2] == golden[-1]
    assert Meaning(got).described() == Meaning(golden).described()


def _streamed(call) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[list[str]] = []

    def fake(args, chunk, **kw):  # type: ignore[no-untyped-def]
        seen.append(list(args))
        return iter(())

    with mock.patch.object(runner, "stream", fake):
        list(call())
    return seen[0]


def test_analysis_commands_mean_the_same() -> None:
    q = gp.config().quality
    clip = Path("/out/clips/abc.mp4")
    filters = [quality.silence_filter(q), meter_filter()]
    analysis = _streamed(lambda: quality.sample_frames(clip, 640, 360, filters, lambda s: None))
    assert Meaning(analysis).described() == Meaning(GOLDEN["analysis"]).described()
    rgb = frames.FrameSpec(960, 540, 30, gray=False)
    src = Path("/uploads/a.mp4")
    got = _streamed(lambda: frames.read_frames(src, rgb, duration=2.0))
    assert Meaning(got).described() == Meaning(GOLDEN["read_frames_rgb"]).described()
    gray = frames.FrameSpec(320, 180, 2)
    got = _streamed(lambda: frames.read_frames(src, gray))
    assert Meaning(got).described() == Meaning(GOLDEN["read_frames_gray"]).described()


def test_the_comparison_sees_a_changed_parameter() -> None:
    """The reader is not blind: one changed value, source or option is a difference."""
    golden = GOLDEN["anonymized_portrait"]
    base = Meaning(golden).described()
    for old, new in [
        ("gblur=sigma=5", "gblur=sigma=4"),
        ("[faces_pic][faces_blur][faces_mask]", "[faces_blur][faces_pic][faces_mask]"),
        ("rubberband=pitch=0.8000", "rubberband=pitch=0.8001"),
    ]:
        changed = [a.replace(old, new) for a in golden]
        assert changed != golden
        assert Meaning(changed).described() != base, old
    dropped = golden[: golden.index("-crf")] + golden[golden.index("-crf") + 2 :]
    assert Meaning(dropped).described() != base


def test_ffmpeg_python_escaping_reaches_the_filter_as_written() -> None:
    """A value with every graph metacharacter comes back whole through ffmpeg's two levels."""
    nasty = "/tmp/a'b:c,d[e];f\\g=h.ass"
    args = gp.PLANS["captions"](gp.config())
    fc = args[args.index("-filter_complex") + 1]
    assert fc.count("ass=filename=") == 1
    import processing.graph as graph

    node = graph.filt(graph.source("color"), "ass", filename=nasty)
    text = graph.compile_args(graph.output(node, "-", f="null"))
    graph_text = text[text.index("-filter_complex") + 1]
    ass = next(f for f in parse_graph(graph_text, "x") if f.name == "ass")
    assert dict(ass.kwargs)["filename"] == nasty
    assert get_token("a\\:b:c", 0, ":") == ("a:b", 4)


def test_real_ffmpeg_reads_an_escaped_captions_path(tmp_path: Path) -> None:
    """ffmpeg itself opens a captions file whose path holds ``'``, ``:``, ``,`` and ``[]``."""
    from processing import graph
    from processing.captions import CaptionSpec, build_ass

    folder = tmp_path / "it's a:b,c [d]"
    folder.mkdir()
    ass = folder / "captions.ass"
    ass.write_text(build_ass(CaptionSpec("#x", "Y", "DejaVu Sans"), 320, 180), "utf-8")
    pic = graph.filt(graph.source("color", s="320x180", d=0.1), "ass", filename=str(ass))
    _, stderr = runner.run(
        ["-v", "verbose", *graph.compile_args(graph.output(pic, "-", f="null"))], timeout=60
    )
    # libass names the file it read: the path arrived whole, not cut at ' : , or [.
    assert f"reading file '{ass}'" not in stderr  # that is its failure message
    assert "Added subtitle file" in stderr, stderr[-800:]
