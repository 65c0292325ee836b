"""The plain MoviePy 2 script a volunteer would write instead of the pipeline.

Same output frame (1920x1080), frame rate (30), codecs (libx264 + AAC 48 kHz)
and captions (the hashtag top right and the name as a lower third, drawn with
TextClip from a font file) as the pipeline; x264 preset and CRF are passed in
so both sides encode with the same settings. It does less than the pipeline:
no health check, no loudness measurement or normalization, no blurred
background for other aspect ratios, no metadata scrub, no output checks.

Prints one JSON line: ``{"seconds": <time from opening the clip to the
finished file>}`` (Python and MoviePy import time excluded, to be fair to it).

    python bench/moviepy_clip.py SRC DST --font FONT.ttf --preset fast --crf 20
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--font", required=True)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--crf", type=int, default=20)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--hashtag", default="#100forJustice")
    ap.add_argument("--name", default="Айшат из Грозного")
    a = ap.parse_args()

    from moviepy import CompositeVideoClip, TextClip, VideoFileClip

    start = time.monotonic()
    w, h = a.width, a.height
    clip = VideoFileClip(a.src)
    if tuple(clip.size) != (w, h):  # a careful script skips a no-op resize
        clip = clip.resized(new_size=(w, h))
    scale = h / 1080
    tag = TextClip(
        font=a.font,
        text=a.hashtag,
        font_size=round(46 * scale),
        color="white",
        bg_color=(176, 18, 74),
        margin=(round(12 * scale), round(12 * scale)),
    ).with_duration(clip.duration)
    name = TextClip(
        font=a.font,
        text=a.name,
        font_size=round(64 * scale),
        color="white",
        bg_color=(16, 16, 24),
        margin=(round(16 * scale), round(16 * scale)),
    ).with_duration(clip.duration)
    tag = tag.with_position((w - tag.w - round(80 * scale), round(60 * scale)))
    name = name.with_position((round(80 * scale), h - name.h - round(110 * scale)))
    video = CompositeVideoClip([clip, tag, name], size=(w, h))
    video.write_videofile(
        a.dst,
        fps=a.fps,
        codec="libx264",
        preset=a.preset,
        ffmpeg_params=["-crf", str(a.crf)],
        audio_codec="aac",
        audio_fps=48000,
        audio_bitrate="192k",
        logger=None,
    )
    video.close()
    clip.close()
    print(json.dumps({"seconds": round(time.monotonic() - start, 3)}))


if __name__ == "__main__":
    main()
