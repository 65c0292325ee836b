"""The opening title card and the closing call-to-action card.

Cards are drawn by libass over a slow campaign-coloured gradient, the same way
captions are (so Russian, Arabic or any other language shapes correctly), and
encoded with :func:`processing.normalize.encoder_args`: exactly the clips'
codec settings, so the compilation can be joined by stream copy. MoviePy could
draw them too, but would add a second text renderer without shaping and a
second encoder configuration to keep in step.

A card is rendered once and reused until its text or the settings change: its
file name carries :meth:`Config.cards_fingerprint`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import graph, runner
from .captions import ass_colour, ass_literal
from .config import Config
from .fsutil import atomic_output
from .normalize import encoder_args

#: Campaign colours: deep crimson to night blue.
GRADIENT = ("0x3a0b22", "0x12162e", "0x24102a", "0x0b1a2e")


@dataclass(frozen=True)
class Card:
    """A rendered card segment."""

    kind: str
    """``title`` or ``end``."""
    path: Path
    duration: float
    chapter: str


def card_lines(kind: str, cfg: Config) -> list[tuple[str, str]]:
    """``(style, text)`` lines of a card, top to bottom."""
    text = cfg.card_text()
    if kind == "title":
        return [("Title", text.title), ("Sub", text.subtitle)]
    return [("Title", text.end_title), *(("Line", line) for line in text.end_lines),
            ("Tag", cfg.campaign.hashtag)]  # fmt: skip


def build_card_ass(kind: str, cfg: Config, duration: float) -> str:
    """The ASS script of a card: centred lines fading in and out."""
    w, h = cfg.output.width, cfg.output.height
    scale = h / 1080
    white = ass_colour(0xFFFFFF)
    soft = ass_colour(0xE8DDE4)
    accent = ass_colour(0xF05A8C)
    clear = ass_colour(0x000000, alpha=0xFF)
    font = cfg.captions.font.replace(",", " ")

    def style(name: str, size: int, colour: str, bold: int) -> str:
        return (
            f"Style: {name},{font},{round(size * scale)},{colour},{colour},{clear},{clear},"
            f"{bold},0,0,0,100,100,0,0,1,0,0,5,{round(160 * scale)},{round(160 * scale)},0,1"
        )

    lines = card_lines(kind, cfg)
    sizes = {"Title": 84, "Sub": 46, "Line": 50, "Tag": 56}
    gaps = {"Title": 150, "Sub": 80, "Line": 90, "Tag": 110}
    total = sum(gaps[s] for s, _ in lines)
    y = (h - total * scale) / 2
    end = _ass_time(duration)
    events = []
    for name, text in lines:
        y += gaps[name] * scale / 2
        events.append(
            f"Dialogue: 0,0:00:00.00,{end},{name},,0,0,0,,"
            f"{{\\pos({w // 2},{round(y)})\\fad(600,600)}}{ass_literal(text)}"
        )
        y += gaps[name] * scale / 2
    return "\n".join(
        [
            "[Script Info]",
            "ScriptType: v4.00+",
            f"PlayResX: {w}",
            f"PlayResY: {h}",
            "WrapStyle: 0",
            "ScaledBorderAndShadow: yes",
            "YCbCr Matrix: TV.709",
            "",
            "[V4+ Styles]",
            "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
            "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
            "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
            style("Title", sizes["Title"], white, 1),
            style("Sub", sizes["Sub"], soft, 0),
            style("Line", sizes["Line"], soft, 0),
            style("Tag", sizes["Tag"], accent, 1),
            "",
            "[Events]",
            "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
            *events,
            "",
        ]
    )


def render_card(kind: str, cfg: Config, folder: Path) -> Card:
    """Render (or reuse) the ``title`` or ``end`` card into ``folder``."""
    text = cfg.card_text()
    seconds = cfg.compilation.title_seconds if kind == "title" else cfg.compilation.end_seconds
    out = cfg.output
    frames = max(1, round(seconds * out.fps))
    duration = frames / out.fps
    chapter = text.title_chapter if kind == "title" else text.end_chapter
    dst = folder / f"{kind}-{cfg.compilation.language}-{cfg.cards_fingerprint()}.mp4"
    if dst.is_file():
        return Card(kind, dst, duration, chapter)
    with tempfile.TemporaryDirectory(prefix="reel-card-") as tmp:
        ass = Path(tmp) / "card.ass"
        ass.write_text(build_card_ass(kind, cfg, duration), "utf-8")
        with atomic_output(dst) as part:
            runner.run(
                card_command(cfg, duration, ass, part), timeout=cfg.limits.timeout_for(duration)
            )
    return Card(kind, dst, duration, chapter)


def card_command(cfg: Config, duration: float, ass: Path, dst: Path) -> list[str]:
    """ffmpeg arguments drawing the card script ``ass`` over the gradient into ``dst``.

    Sources and filters are all in one ``-filter_complex`` (ffmpeg-python has
    no ``-f lavfi`` graph inputs): the same frames as the former lavfi inputs,
    checked bit for bit when the graphs moved to ffmpeg-python.
    """
    out = cfg.output
    c = GRADIENT
    length = f"{duration:.6f}"
    # The gradient is smooth: draw it at 1/8 size and scale up (8x fewer pixels
    # to compute per frame than drawing it full size, and indistinguishable).
    colours = {f"c{i}": colour for i, colour in enumerate(c)}
    video = graph.source(
        "gradients", s=f"{out.width // 8}x{out.height // 8}", r=out.fps, nb_colors=4, seed=29,
        speed=0.004, duration=length, **colours,
    )  # fmt: skip
    video = graph.filt(video, "scale", out.width, out.height, flags="bicubic")
    video = graph.filt(graph.filt(video, "setsar", 1), "format", "yuv420p")
    video = graph.filt(video, "ass", filename=str(ass))
    audio = graph.source("anullsrc", r=out.sample_rate, cl="stereo")
    opts = graph.options(encoder_args(cfg))
    return graph.compile_args(
        graph.output([video, audio], runner.input_path(dst), f="mp4", t=length, **opts)
    )


def _ass_time(seconds: float) -> str:
    cs = round(seconds * 100)
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"
