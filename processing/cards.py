"""The opening title card, a social part's title card and the closing call-to-action card.

Cards are drawn by libass over a slow campaign-coloured gradient, the same way
captions are (so Russian, Arabic or any other language shapes correctly), and
encoded with :func:`processing.normalize.encoder_args`: exactly the clips'
codec settings, so the compilation can be joined by stream copy. MoviePy could
draw them too, but would add a second text renderer without shaping and a
second encoder configuration to keep in step. What a card says and where, per
frame (16:9, 9:16, 1:1), is :mod:`processing.card_layout`'s; the end card's
QR codes are drawn by :mod:`processing.social.qr` and laid over the gradient.

A card is rendered once and reused until its text or the settings change: its
file name carries :meth:`Config.cards_fingerprint`.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import graph, runner
from .card_layout import CardFrame, build_card_ass, card_frame
from .clip.files import aspect_slug
from .config import Config
from .fsutil import atomic_output
from .normalize import encoder_args
from .social.qr import write_qr_png

log = logging.getLogger(__name__)

#: Campaign colours: deep crimson to night blue.
GRADIENT = ("0x3a0b22", "0x12162e", "0x24102a", "0x0b1a2e")


@dataclass(frozen=True)
class Card:
    """A rendered card segment."""

    kind: str
    """``title``, ``part`` or ``end``."""
    path: Path
    duration: float
    chapter: str


def render_card(
    kind: str, cfg: Config, folder: Path, aspect: str = "16:9", part_label: str = ""
) -> Card:
    """Render (or reuse) a card into ``folder``.

    Args:
        kind: ``title``, ``part`` (opens a social part, says ``part_label``) or ``end``.
        cfg: Settings.
        folder: Where cards are kept between builds.
        aspect: The frame: ``16:9`` (``[output]``), ``9:16`` or ``1:1``.
        part_label: The part's title, e.g. ``Part 2/5``.
    """
    if aspect != "16:9":  # encoded as that frame's clips are, to join with them
        cfg = cfg.for_renditions()
    text = cfg.card_text()
    seconds = {"title": cfg.compilation.title_seconds, "end": cfg.compilation.end_seconds}.get(
        kind, cfg.social.part_title_seconds
    )
    out = cfg.output
    frames = max(1, round(seconds * out.fps))
    duration = frames / out.fps
    chapter = {"title": text.title_chapter, "end": text.end_chapter}.get(kind, part_label)
    qr = kind == "end" and cfg.compilation.qr_codes
    frame = card_frame(aspect, cfg, qr=qr)
    # A part card's label in any language and script: named by its digest.
    name = (
        kind if kind != "part" else "part-" + hashlib.sha256(part_label.encode()).hexdigest()[:12]
    )
    where = "" if aspect == "16:9" else f"-{aspect_slug(aspect)}"
    dst = folder / f"{name}-{cfg.compilation.language}{where}-{cfg.cards_fingerprint()}.mp4"
    if dst.is_file():
        return Card(kind, dst, duration, chapter)
    with tempfile.TemporaryDirectory(prefix="reel-card-") as tmp:
        codes = _qr_codes(cfg, frame, Path(tmp)) if qr else []
        coded = tuple(any(c[1:] == box[:2] for c in codes) for box in frame.qr)
        ass = Path(tmp) / "card.ass"
        ass.write_text(build_card_ass(kind, cfg, duration, frame, part_label, coded), "utf-8")
        with atomic_output(dst) as part:
            runner.run(
                card_command(cfg, duration, ass, part, frame=frame, codes=codes),
                timeout=cfg.limits.timeout_for(duration),
            )
    return Card(kind, dst, duration, chapter)


def _qr_codes(cfg: Config, frame: CardFrame, tmp: Path) -> list[tuple[Path, int, int]]:
    """The petition's and the donation's link as PNGs of their boxes' size, with their places.

    A link whose code cannot be drawn scannably in its box is left without one (logged).
    """
    text = cfg.card_text()
    codes = []
    for i, (link, box) in enumerate(
        zip((text.petition_link, text.donate_link), frame.qr, strict=True)
    ):
        try:
            png = write_qr_png(link, tmp / f"qr{i}.png", box[2] - box[0])
        except ValueError as exc:
            # The link is still printed on the card: a frame too small to scan a code
            # in (a test or preview size) or a too-long link loses the code, not the cut.
            log.warning("end card (%s): drawn without this QR code: %s", frame.aspect, exc)
            continue
        codes.append((png, box[0], box[1]))
    return codes


def card_command(
    cfg: Config,
    duration: float,
    ass: Path,
    dst: Path,
    *,
    frame: CardFrame | None = None,
    codes: Sequence[tuple[Path, int, int]] = (),
) -> list[str]:
    """ffmpeg arguments drawing the card script ``ass`` over the gradient into ``dst``.

    ``frame`` gives the size (default: ``[output]``); each of ``codes`` is a
    PNG laid over the gradient with its top left corner at ``(x, y)``.

    Sources and filters are all in one ``-filter_complex`` (ffmpeg-python has
    no ``-f lavfi`` graph inputs): the same frames as the former lavfi inputs,
    checked bit for bit when the graphs moved to ffmpeg-python.
    """
    out = cfg.output
    width, height = frame.size if frame else (out.width, out.height)
    c = GRADIENT
    length = f"{duration:.6f}"
    # The gradient is smooth: draw it at 1/8 size and scale up (8x fewer pixels
    # to compute per frame than drawing it full size, and indistinguishable).
    colours = {f"c{i}": colour for i, colour in enumerate(c)}
    video = graph.source(
        "gradients", s=f"{width // 8}x{height // 8}", r=out.fps, nb_colors=4, seed=29,
        speed=0.004, duration=length, **colours,
    )  # fmt: skip
    video = graph.filt(video, "scale", width, height, flags="bicubic")
    video = graph.filt(graph.filt(video, "setsar", 1), "format", "yuv420p")
    for png, x, y in codes:
        code = graph.input_file(png, loop=1, framerate=out.fps)
        video = graph.filt([video, code], "overlay", x=x, y=y, format="yuv420")
    video = graph.filt(video, "ass", filename=str(ass))
    audio = graph.source("anullsrc", r=out.sample_rate, cl="stereo")
    opts = graph.options(encoder_args(cfg))
    return graph.compile_args(
        graph.output([video, audio], runner.input_path(dst), f="mp4", t=length, **opts)
    )
