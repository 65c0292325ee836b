"""What the encode writes beside a clip so that nothing decodes the upload or the clip again.

Issue 16: the encode is the health check's decode (:func:`decoded_seconds`
says how much picture it really got) and the quality analysis's (small gray
frames of the finished picture, the finished sound metered): see
:func:`tap_outputs`, which :func:`processing.normalize.build_command` adds to its graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import graph, runner
from .analysis import SAMPLE_FPS, analysis_size, silence_filter
from .config import Quality
from .loudness import meter_filter


@dataclass(frozen=True)
class Taps:
    """What the encode writes beside the clip so that nothing decodes it again (issue 16).

    The finished picture at :data:`SAMPLE_FPS`, small and gray, as raw frames
    (``frames``); the finished sound through :func:`silence_filter` and the
    loudness meter into the encode's stderr (``audio_filters``); and a
    ``framecrc`` line per picture frame the upload decoded to (``decoded``),
    from which :func:`decoded_seconds` reads how much picture there really was.
    """

    frames: Path
    decoded: Path
    size: tuple[int, int]
    audio_filters: tuple[str, ...]

    @classmethod
    def in_folder(cls, folder: Path, q: Quality, frame: tuple[int, int]) -> Taps:
        """Taps written into ``folder`` (a temporary one) for a clip of ``frame`` size."""
        return cls(
            folder / "frames.gray",
            folder / "decoded.crc",
            analysis_size(frame),
            (silence_filter(q), meter_filter()),
        )

    def read_frames(self) -> Iterator[np.ndarray]:
        """The tapped frames, one at a time."""
        width, height = self.size
        with self.frames.open("rb") as fh:
            while len(chunk := fh.read(width * height)) == width * height:
                yield np.frombuffer(chunk, np.uint8).reshape(height, width)


_CRC_TB = re.compile(r"^#tb 0: (\d+)/(\d+)", re.M)


def decoded_seconds(framecrc: Path) -> float:
    """Where the last frame of a ``framecrc`` listing of one stream ends, in seconds (0: none)."""
    try:
        text = framecrc.read_text("ascii", "replace")
    except FileNotFoundError:
        return 0.0
    tb = _CRC_TB.search(text)
    end = 0
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if line.startswith("#") or len(fields) < 6 or not fields[2].lstrip("-").isdigit():
            continue
        end = max(end, int(fields[2]) + max(0, int(fields[3])))
    return end * int(tb.group(1)) / int(tb.group(2)) if tb and end > 0 else 0.0


def tap_outputs(
    vout: graph.Stream,
    aout: graph.Stream,
    upload: graph.Stream,
    length: str,
    taps: Taps,
    *,
    silent: bool,
    rate: int,
) -> tuple[graph.Stream, graph.Stream, list[graph.Stream]]:
    """The encode's extra outputs for its checks, and the picture and sound left to encode.

    Split off the finished picture and sound (so they measure what is
    published, as a decode of the clip would, less its compression): small
    gray frames at :data:`~processing.analysis.SAMPLE_FPS` into a raw file,
    the sound through silencedetect and the loudness meter into a null output
    (they print to stderr); and the upload's own decoded picture, one
    ``framecrc`` line per frame without converting it (``wrapped_avframe``),
    which says how far the decode really got. Splitting copies no pixels, so
    the clip's bytes are the same with or without the taps.

    A clip without sound gets its own silence to measure: splitting the
    generated one would change the sample format the FLAC master is given.
    """
    vout, vtap = graph.split(vout, 2)
    if silent:  # the encode's sound is generated silence
        # (a length of its own, or ffmpeg-python would take it for the same node)
        atap = graph.source("anullsrc", r=rate, cl="stereo", d=length)
    else:
        aout, atap = graph.split(aout, 2, audio=True)
    small = graph.filt(graph.filt(vtap, "fps", SAMPLE_FPS, start_time=0), "scale", *taps.size,
                       flags="area")  # fmt: skip
    frames = graph.output(
        graph.filt(small, "format", "gray"), runner.input_path(taps.frames),
        f="rawvideo", t=length,
    )  # fmt: skip
    metered = graph.output(graph.chain(atap, taps.audio_filters), "-", f="null", t=length)
    decoded = graph.output(
        upload["v:0"], runner.input_path(taps.decoded), f="framecrc", **{"c:v": "wrapped_avframe"}
    )
    return vout, aout, [frames, metered, decoded]
