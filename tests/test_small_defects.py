"""The smaller defects of issue 12, each measured on what a user or player gets.

Subtitles are decoded by ffmpeg's own SubRip/WebVTT decoders (the ones mpv,
ffplay and ``subtitles=`` use) and read as libass reads the result; terminal
output is captured from a real ``reel`` subprocess; interrupted and failed
encodes are real ffmpeg processes killed or starved from outside.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import pytest

import mediagen as mg
from processing import quality, runner
from processing.compilation_files import credits, srt, webvtt, youtube_chapters
from processing.config import load_config
from processing.decisions import MAX_HISTORY, apply_decisions
from processing.errors import ConfigError
from processing.normalize import encoder_args
from processing.pipeline import process_batch
from processing.probe import probe
from processing.sidecar import parse_sidecar
from processing.storage import LocalSource
from processing.timeline import Compilation, Segment
from processing.verify import conformance_problems

#: Contributor text that players would read as markup if it were not escaped.
MARKUP = [
    r"{\an8}Sam",
    r"{\p1}m 0 0 l 90 0 90 90{\p0}",
    "{b} hidden?",
    "{Y:i}microdvd",
    "<i>it</i> <b>b</b> <u>u</u> <s>s</s>",
    '<font color="#ff0000">red</font>',
    "a < b > c",
    "<3 <unknown> x <br> y",
    r"a\Nb a\nb a\hb \{ \}",
    "&amp; &lt;i&gt; & a --> b",
    'O\'Brien: 100% "x" \\ {\\an8} $(rm -rf /)',
    "Айшат 🏳️‍🌈 محمد 李明",
]


def _segments(texts: list[tuple[str, str | None]]) -> list[Segment]:
    return [
        Segment(
            kind="clip",
            path=Path(f"/x/{i}.mp4"),
            duration=2.0,
            label=name,
            id=f"c{i}",
            name=name,
            message=message,
            credit=name,
            start=2.0 * i,
        )
        for i, (name, message) in enumerate(texts)
    ]


def _decoded_dialogue(path: Path, tmp: Path) -> list[str]:
    """The dialogue text ffmpeg's subtitle decoder hands to libass, one per cue."""
    ass = tmp / f"{path.name}.ass"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(path), str(ass)], check=True, timeout=60
    )
    lines = ass.read_text("utf-8").splitlines()
    return [line.split(",", 9)[9] for line in lines if line.startswith("Dialogue:")]


def libass_visible(text: str) -> str:
    r"""What libass draws for dialogue ``text``, as characters.

    ``{…}`` is an override block (drawn as nothing), ``\{``/``\}`` are literal
    braces, ``\N``/``\n`` break the line, ``\h`` is a no-break space; any
    other backslash is itself. A word joiner is invisible.
    """
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch == "\\" and nxt in ("{", "}"):
            out.append(nxt)
            i += 2
        elif ch == "\\" and nxt in ("N", "n", "h"):
            out.append("\n" if nxt in "Nn" else "\u00a0")
            i += 2
        elif ch == "{":
            end = text.find("}", i)
            i = len(text) if end < 0 else end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out).replace("\u2060", "")


def test_srt_cues_are_shown_literally_by_ffmpeg_and_libass(tmp_path: Path) -> None:
    segments = _segments([(text, "message " + text) for text in MARKUP])
    path = tmp_path / "comp.srt"
    path.write_text(srt(segments), "utf-8")
    shown = [libass_visible(d) for d in _decoded_dialogue(path, tmp_path)]
    assert shown == [f"{text}\nmessage {text}" for text in MARKUP]


def test_srt_override_does_not_move_the_caption(tmp_path: Path) -> None:
    """Rendered by libass: an escaped ``{\\an8}`` stays at the bottom, drawn as text."""
    boxes = {}
    for label, text in {"plain": "Sam", "hostile": r"{\an8}Sam"}.items():
        path = tmp_path / f"{label}.srt"
        path.write_text(srt(_segments([(text, None)])), "utf-8")
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=black:s=320x180:d=1",
             "-vf", f"subtitles=filename='{path}'", "-frames:v", "1",
             "-f", "rawvideo", "-pix_fmt", "gray", "-"],
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        ys, xs = np.nonzero(np.frombuffer(raw, np.uint8).reshape(180, 320) > 60)
        boxes[label] = (ys.min(), ys.max(), xs.min(), xs.max())
    plain, hostile = boxes["plain"], boxes["hostile"]
    assert hostile[0] > 180 * 0.75, f"caption moved up: {hostile}"
    assert abs(hostile[1] - plain[1]) <= 2
    # "{\an8}" is drawn too, so the line is wider than "Sam" alone.
    assert hostile[3] - hostile[2] > (plain[3] - plain[2]) * 2


def test_webvtt_cues_are_shown_literally(tmp_path: Path) -> None:
    segments = _segments([(text, None) for text in MARKUP])
    path = tmp_path / "comp.vtt"
    path.write_text(webvtt(segments), "utf-8")
    shown = [libass_visible(d) for d in _decoded_dialogue(path, tmp_path)]
    assert shown == MARKUP


#: Sidecar names as a hostile or careless contributor might type them → what is shown.
INVISIBLE = {
    "Sam\u202eevil\u202c": "Samevil",  # right-to-left override
    "\u2066Sam\u2069 \u200eX\u200f\u061c": "Sam X",  # isolates and marks
    "S\u200ba\u200cm\u200d\u2060\ufeff": "Sam",  # zero-width, in a Latin name
    "Sam 🏳️‍🌈 👨‍👩‍👧": "Sam 🏳️‍🌈 👨‍👩‍👧",  # emoji ZWJ sequences stay whole
    "می\u200cخواهم": "می\u200cخواهم",  # Persian's non-joiner is spelling
}


def test_bidi_and_zero_width_characters_never_reach_credits_chapters_or_captions(
    tmp_path: Path,
) -> None:
    cfg = load_config()
    texts = []
    for raw in INVISIBLE:
        sidecar, warnings = parse_sidecar(
            json.dumps({"name": raw, "message": raw}).encode(), max_bytes=10_000
        )
        assert warnings == []
        texts.append((sidecar.name, sidecar.message))
    segments = _segments(texts)  # type: ignore[arg-type]
    comp = Compilation(output=tmp_path / "c.mp4", year=2027, segments=segments)
    credit_lines = credits(comp, cfg).splitlines()[-len(INVISIBLE) :]
    chapter_names = [line.split(" ", 1)[1] for line in youtube_chapters(segments).splitlines()]
    assert credit_lines == chapter_names == list(INVISIBLE.values())
    path = tmp_path / "c.srt"
    path.write_text(srt(segments), "utf-8")
    shown = [libass_visible(d) for d in _decoded_dialogue(path, tmp_path)]
    assert shown == [f"{v}\n{v}" for v in INVISIBLE.values()]
    bidi = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b\ufeff]")
    assert not bidi.search(path.read_text("utf-8") + "".join(credit_lines + chapter_names))


SMALL_TOML = '[output]\nwidth = 320\nheight = 180\nx264_preset = "veryfast"\n'


def reel(*args: str, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[bytes]:
    """``reel ARGS`` as an operator runs it: a new process, output captured as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        timeout=timeout,
        cwd=Path(__file__).parent.parent,
        **kw,  # type: ignore[arg-type]
    )


def test_escape_sequences_in_upload_names_never_reach_the_terminal(tmp_path: Path) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "out"
    uploads.mkdir()
    good = "\x1b]0;owned\x07\x1b[31mred\x1b[0m\r\u202eclip.mp4"
    mg.make_clip(uploads / good, duration=1.5, size=(160, 90))
    (uploads / "\x1b[2J\x1b[Hempty\x08\x9b1m.mp4").write_bytes(b"")
    config = tmp_path / "reel.toml"
    config.write_text(SMALL_TOML, "utf-8")
    done = reel("-v", "process", str(uploads), "--out", str(out), "--config", str(config))
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown.decode(errors="replace")[-2000:]
    report = json.loads((out / "report.json").read_text("utf-8"))
    statuses = sorted(e["status"] for e in report["submissions"])
    assert statuses == ["excluded", "rejected"]  # rendered; no consent sidecar
    # Both names reached the screen (the rejected one in its line, the good one in
    # the -v log), every control as a visible escape.
    assert b"\\x1b[2J\\x1b[Hempty\\x08\\x9b1m.mp4" in done.stderr
    assert b"\\x1b]0;owned\\x07\\x1b[31mred\\x1b[0m\\x0d\\u202eclip.mp4" in done.stderr
    for raw in (b"\x1b", b"\x07", b"\x08", "\x9b".encode(), "\u202e".encode()):
        assert raw not in shown, f"{raw!r} reached the terminal"


def _kill_encode_of(parent: int, stop: threading.Event, killed: list[str]) -> None:
    """SIGKILL the first encoding ffmpeg (its output is a ``.part`` file) under ``parent``."""
    while not stop.is_set():
        try:
            children = psutil.Process(parent).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            with contextlib.suppress(psutil.Error):
                cmd = child.cmdline()
                if cmd and Path(cmd[0]).name == "ffmpeg" and any(".part" in a for a in cmd):
                    child.send_signal(signal.SIGKILL)
                    killed.append(" ".join(cmd))
                    return
        time.sleep(0.005)


def test_ffmpeg_killed_from_outside_is_an_interrupted_run_not_a_bad_upload(
    tmp_path: Path,
) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "out"
    uploads.mkdir()
    mg.make_clip(uploads / "fine.mp4", duration=3, size=(640, 360))
    (uploads / "fine.json").write_text('{"consent": true}', "utf-8")
    config = tmp_path / "reel.toml"
    config.write_text('[output]\nwidth = 640\nheight = 360\nx264_preset = "medium"\n', "utf-8")
    args = [sys.executable, "-m", "flows.cli", "process", "-q", str(uploads), "--out", str(out)]
    args += ["--config", str(config)]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parent.parent
    )
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_encode_of, args=(proc.pid, stop, killed))
    killer.start()
    stdout, stderr = proc.communicate(timeout=600)
    stop.set()
    killer.join()
    assert killed, "the encode finished before it could be killed"
    said = (stdout + stderr).decode()
    assert proc.returncode == 130, said
    assert "interrupted" in said and "SIGKILL" in said and "run again" in said
    assert "Traceback" not in said and "encode_failed" not in said
    assert len(stderr.decode().strip().splitlines()) == 1, said
    # Nothing half-done at a final path, and no record calling the upload bad.
    assert sorted(p.name for p in (out / "clips").iterdir()) == []
    if (out / "report.json").is_file():
        report = json.loads((out / "report.json").read_text("utf-8"))
        assert all(e["status"] != "rejected" for e in report["submissions"])
    # Run again: the same upload is rendered as if nothing had happened.
    again = reel("process", "-q", str(uploads), "--out", str(out), "--config", str(config))
    assert again.returncode == 0, again.stderr.decode()
    report = json.loads((out / "report.json").read_text("utf-8"))
    assert [(e["status"], e["output"]) for e in report["submissions"]] == [
        ("accepted", f"clips/{report['submissions'][0]['id']}.mp4")
    ]


def test_extreme_aspect_ratio_gets_quality_flags_and_leaves_no_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    mg.make_clip(uploads / "needle.mp4", duration=1.2, size=(16, 8192), preset="ultrafast")
    (uploads / "needle.json").write_text('{"consent": true}', "utf-8")
    cfg = load_config(overrides={"output": {"width": 640, "height": 360}})
    source = LocalSource(uploads, cfg.ingest.ignore)

    # A bug met after the encode (here: in the measuring) costs the clip, and
    # takes its files with it.
    broken = tmp_path / "broken"
    with monkeypatch.context() as m:
        m.setattr(quality, "measure_taps", lambda *a, **k: [][0])
        (entry,) = process_batch(source, broken, cfg)
    assert (entry.status, entry.code) == ("rejected", "internal_error")
    assert sorted(p.name for p in (broken / "clips").iterdir()) == []
    caplog.clear()  # the injected bug's ERROR record is expected

    out = tmp_path / "out"
    (entry,) = process_batch(source, out, cfg)
    assert (entry.status, entry.code) == ("accepted", None), entry.reason
    assert entry.quality and entry.quality["content"] == [2, 360]
    measured = {"dark", "blurry", "silent", "frozen", "black", "no_face"}
    assert entry.flags and measured <= set(entry.flags)
    assert all(isinstance(entry.flags[f]["value"], float) for f in measured), entry.flags
    assert any("quality flags are unreliable" in w for w in entry.warnings)
    record = json.loads((out / "clips" / f"{entry.id}.json").read_text("utf-8"))
    assert {f: record["flags"][f] for f in measured} == {f: entry.flags[f] for f in measured}
    listed = {f"{entry.id}.mp4", f"{entry.id}.json", f"{entry.id}.flac"}
    assert {p.name for p in (out / "clips").iterdir()} <= listed


ALL_X264_PRESETS = [
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo",
]  # fmt: skip


def test_config_check_refuses_exactly_the_presets_whose_clips_fail_their_output_check(
    tmp_path: Path,
) -> None:
    base = load_config(overrides={"output": {"width": 320, "height": 180}})
    conforms, accepted = {}, {}
    for preset in ALL_X264_PRESETS:
        cfg = replace(base, output=replace(base.output, x264_preset=preset))
        clip = tmp_path / f"{preset}.mp4"
        runner.run(
            ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=1",
             "-f", "lavfi", "-i", "sine=r=48000:d=1", *encoder_args(cfg), "-y", str(clip)],
        )  # fmt: skip
        conforms[preset] = conformance_problems(probe(clip), cfg, 1.0) == []
        toml = tmp_path / f"{preset}.toml"
        toml.write_text(f'[output]\nx264_preset = "{preset}"\n', "utf-8")
        try:
            load_config(toml)
            accepted[preset] = True
        except ConfigError:
            accepted[preset] = False
    assert accepted == conforms
    assert not all(conforms.values())  # the check has something to refuse
    refused = reel("config", "--check", str(tmp_path / "ultrafast.toml"))
    assert refused.returncode == 2
    assert refused.stdout == b""
    (line,) = refused.stderr.decode().splitlines()
    assert "x264_preset" in line and "ultrafast" in line and "High" in line


def _no_room_run(tmp_path: Path, out: Path, **kw: object) -> subprocess.CompletedProcess[bytes]:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    mg.make_clip(uploads / "clip.mp4", duration=2, size=(320, 180))
    (uploads / "clip.json").write_text('{"consent": true}', "utf-8")
    config = tmp_path / "reel.toml"
    config.write_text(SMALL_TOML, "utf-8")
    return reel("process", "-q", str(uploads), "--out", str(out), "--config", str(config), **kw)


def _assert_one_line_no_room(done: subprocess.CompletedProcess[bytes], out: Path) -> str:
    said = done.stderr.decode()
    assert done.returncode == 2, said
    assert "Traceback" not in said and "encode_failed" not in said, said
    (line,) = said.splitlines()
    assert "free some space" in line and "run again" in line
    clips = out / "clips"
    if clips.is_dir():  # no partial or orphaned file
        assert sorted(p.name for p in clips.iterdir()) == []
    if (out / "report.json").is_file():  # no upload was blamed for the machine's problem
        report = json.loads((out / "report.json").read_text("utf-8"))
        assert all(e["status"] != "rejected" for e in report["submissions"])
    return line


def test_a_file_size_limit_gives_one_line_not_a_rejection(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (portable, no root): ffmpeg's writes fail with EFBIG past 40 kB."""
    out = tmp_path / "out"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    line = _assert_one_line_no_room(_no_room_run(tmp_path, out, preexec_fn=limit), out)
    assert "file-size limit" in line


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real small filesystem at ``path`` (needs mount rights: root, as in CI's container)."""
    path.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_full_disk_gives_one_line_not_a_rejection(tmp_path: Path) -> None:
    """A real ENOSPC: OUT on a 1 MB tmpfs filled to its last 48 kB."""
    with _tmpfs(tmp_path / "out", "1m") as out:
        filler = out / "filler"
        filler.write_bytes(b"\0" * (1024 * 1024 - 48 * 1024))
        done = _no_room_run(tmp_path, out)
        filler.unlink()
        line = _assert_one_line_no_room(done, out)
        assert "disk (or your quota) is full" in line and "No space left on device" in line


def test_ffmpeg_writing_to_a_full_disk_raises_no_space_even_when_it_exits_0(
    tmp_path: Path,
) -> None:
    """ffmpeg 5.1 exits 0 when the MP4 trailer meets ENOSPC, leaving a broken file."""
    with _tmpfs(tmp_path / "tiny", "64k") as tiny:
        with pytest.raises(OSError) as raised:
            runner.run(
                ["-f", "lavfi", "-i", "testsrc2=s=320x180:d=3", "-c:v", "libx264",
                 "-y", runner.input_path(tiny / "x.mp4")],
            )  # fmt: skip
        assert raised.value.errno == errno.ENOSPC
    # An upload that only *says* it: its name and the ffmpeg error quoting it.
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "x: No space left on device.mp4").write_bytes(b"not a video at all" * 100)
    (entry,) = process_batch(LocalSource(uploads), tmp_path / "out", load_config())
    assert (entry.status, entry.code) == ("rejected", "not_media")


def test_decisions_history_and_editor_name_are_bounded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    subs = [{"id": "a" * 16, "output": "clips/a.mp4"}, {"id": "b" * 16, "output": "clips/b.mp4"}]
    (out / "report.json").write_text(json.dumps({"submissions": subs}), "utf-8")
    hostile = "\x1b[2J\u202eSam\u200b " + "x" * 5000
    applied = MAX_HISTORY + 25
    for n in range(applied):
        choice = "approved" if n % 2 else "rejected"
        exported = {
            "version": 1, "editor": hostile, "decided_at": f"2027-03-20T18:{n % 60:02d}:00+00:00",
            "order": ["a" * 16] if choice == "approved" else [],
            "decisions": {"a" * 16: choice},
        }  # fmt: skip
        apply_decisions(exported, out)
    # The last one as an editor does it, naming someone with --by.
    file = tmp_path / "decisions.json"
    file.write_text(json.dumps({**exported, "decisions": {"b" * 16: "rejected"}}), "utf-8")
    done = reel("review", "apply", str(file), "--out", str(out), "--by", "\x07Ed\r" + "y" * 300)
    assert done.returncode == 0, done.stderr.decode()
    assert b"\x1b" not in done.stdout + done.stderr
    stored = json.loads((out / "decisions.json").read_text("utf-8"))
    history = stored["history"]
    assert len(history) == MAX_HISTORY
    assert history[-1] == stored["current"]
    oldest_kept = applied + 1 - MAX_HISTORY  # the ones before it were dropped
    assert history[0]["decided_at"] == f"2027-03-20T18:{oldest_kept % 60:02d}:00+00:00"
    names = {h["editor"] for h in history} | {h["applied_by"] for h in history}
    assert all(len(name) <= 100 and name.isprintable() for name in names), names
    assert stored["current"]["editor"] == ("[2JSam " + "x" * 5000)[:100]  # ESC, RLO, ZWSP gone
    assert stored["current"]["applied_by"] == ("Ed " + "y" * 300)[:100]
