"""Section 7: the x264 speed/size/quality curve the default preset and CRF are chosen from.

Each candidate (preset, CRF) encodes the same uploads with the pipeline's own
encoder settings (:func:`processing.normalize.encoder_args`: GOP, VBV, High
profile, level, colour tags), video only, pinned to one core with ``taskset``.
For each clip the candidates run side by side, all started at once on that
core, so that each meets the same load; their cost is the CPU time (user +
system) each encode used, which the neighbours on a shared machine move far
less than the wall time (also recorded: with every candidate on one core it
is the time to finish among the others, not alone). Quality is
SSIM against the decoded upload (ffmpeg's ``ssim`` filter, in dB); VMAF is
measured too when this ffmpeg build has ``libvmaf``.

No video can be downloaded at run time, so the uploads are generated, each
standing in for a kind of phone clip the campaign gets:

* ``talking-head``: a real photograph (scikit-image's astronaut, as
  :mod:`mediagen.faces` uses) filling the frame, slowly zooming and drifting
  like a hand-held phone, with temporal sensor grain;
* ``motion``: another real photograph (scikit-image's coffee cup on a table)
  swept across and pushed in and out fast, as when walking with the phone,
  with grain (everything moves every frame: what costs motion search most);
  ffmpeg's ``mandelbrot`` source was tried first and takes minutes a second
  at 1080p;
* ``dark``: the talking head in a dim room: low gain, lifted blacks and the
  heavy grain a phone sensor adds at high ISO.

Each is stored as H.264 at a phone's bit rate (16 Mbit/s at 1080p30), as phones deliver:
the phone's encoder has already smoothed some grain away, as it would have.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from processing import runner
from processing.config import load_config
from processing.normalize import encoder_args

from .common import ffmpeg_binary

#: Today's default, the baseline every candidate is compared with.
BASELINE = ("fast", 20)
#: Candidates of the full plan: the baseline and faster presets at equal or lower CRF.
#: (Five: on the shared 2-core machine one 1080p encode pinned to a core took up to 3 min.)
CANDIDATES: tuple[tuple[str, int], ...] = (
    BASELINE, ("faster", 19), ("veryfast", 18), ("veryfast", 19), ("superfast", 18),
)  # fmt: skip
#: The targets of issue 16: speed-up per clip, size budget, SSIM no lower.
SPEEDUP_MIN = 1.7
SIZE_BUDGET = 1.15
#: The core every encode is pinned to (core 0 keeps the shell and the other helpers).
CORE = "1"
KINDS = ("talking-head", "motion", "dark")
#: A phone's H.264 bit rate at 1080p30 (about 16 Mbit/s), scaled to the frame.
PHONE_KBPS_1080P = 16000


def _photo(work: Path, name: str) -> Path:
    """A photograph scikit-image ships (``astronaut``, ``coffee``) as a PNG; no download."""
    import cv2
    from skimage import data

    path = work / f"{name}.png"
    if not path.exists():
        cv2.imwrite(str(path), cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR))
    return path


def _graph(kind: str, size: tuple[int, int], fps: int, seconds: float) -> tuple[list[str], str]:
    """Inputs and filter graph (ending in ``[v]``) of one kind of upload."""
    w, h = size
    # Hand-held: a slow zoom breathing around 1.15x and a drift of a few per cent.
    zoom = (
        f"zoompan=z='1.15+0.08*sin(on/{fps * 1.7:g})':x='iw/2-(iw/zoom/2)+iw*0.03*sin(on/{fps}.0)'"
        f":y='ih/2-(ih/zoom/2)+ih*0.02*cos(on/{fps * 1.3:g})':d=1:s={w}x{h}:fps={fps}"
    )
    if kind == "motion":
        # Walking with the phone: the camera sweeps across the scene and pushes in and out.
        sweep = (
            f"zoompan=z='1.5+0.4*sin(on/{fps}.0*1.1)':x='(iw-iw/zoom)*(0.5+0.5*sin(on/{fps}.0*0.9))'"
            f":y='(ih-ih/zoom)*(0.5+0.5*cos(on/{fps}.0*0.7))':d=1:s={w}x{h}:fps={fps}"
        )
        graph = f"[0:v]scale={w}:-2,crop={w}:{h},{sweep},noise=alls=6:allf=t,format=yuv420p[v]"
        return ["-loop", "1", "-framerate", str(fps), "-i", "COFFEE"], graph
    photo = ["-loop", "1", "-framerate", str(fps), "-i", "PHOTO"]
    # The square photo cut to the frame's shape around the face (upper part), then hand-held.
    fit = f"scale={w}:-2,crop={w}:{h}:0:ih*0.04,{zoom}"
    if kind == "talking-head":
        return photo, f"[0:v]{fit},noise=alls=5:allf=t,format=yuv420p[v]"
    # A dim room: a fifth of the light, blacks lifted a little, colour washed out.
    dim = (
        "colorlevels=romin=0.03:gomin=0.03:bomin=0.03:romax=0.22:gomax=0.22:bomax=0.24,"
        "eq=saturation=0.7"
    )
    return photo, f"[0:v]{fit},{dim},noise=alls=14:allf=t,format=yuv420p[v]"


def make_upload(work: Path, kind: str, size: tuple[int, int], seconds: float) -> Path:
    """One generated upload of ``kind`` (see the module docstring), at a phone's bit rate."""
    fps = 30
    kbps = max(300, PHONE_KBPS_1080P * size[0] * size[1] // (1920 * 1080))
    dst = work / f"{kind}-{size[0]}x{size[1]}-{seconds:g}s.mp4"
    if dst.exists():
        return dst
    inputs, graph = _graph(kind, size, fps, seconds)
    photos = {"PHOTO": "astronaut", "COFFEE": "coffee"}
    inputs = [str(_photo(work, photos[a])) if a in photos else a for a in inputs]
    tmp = dst.with_name(dst.stem + ".part.mp4")
    runner.run(
        ["-v", "error", *inputs, "-filter_complex", graph, "-map", "[v]", "-t", f"{seconds:g}",
         "-c:v", "libx264", "-preset", "superfast", "-b:v", f"{kbps}k",
         "-maxrate", f"{kbps * 5 // 4}k", "-bufsize", f"{kbps}k", "-pix_fmt", "yuv420p",
         "-g", str(fps), "-y", str(tmp)],
        timeout=1200,
    )  # fmt: skip
    tmp.replace(dst)
    return dst


def encode_command(src: Path, dst: Path, preset: str, crf: int) -> list[str]:
    """The pipeline's encoder settings with ``preset`` and ``crf``, video only, on one core."""
    cfg = load_config(overrides={"output": {"x264_preset": preset, "crf": crf}})
    args = encoder_args(cfg)
    ffmpeg = [ffmpeg_binary(), "-v", "error", "-nostdin", "-i", str(src), "-map", "0:v", "-an"]
    pin = ["taskset", "-c", CORE] if shutil.which("taskset") else []
    return [*pin, *ffmpeg, *args, "-f", "mp4", "-y", str(dst)]


def has_vmaf() -> bool:
    """Whether this ffmpeg build has the ``libvmaf`` filter (Debian's 5.1 does not)."""
    out = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-filters"], capture_output=True, text=True, check=True
    ).stdout
    return bool(re.search(r"\slibvmaf\s", out))


def ssim_db(encoded: Path, source: Path) -> float:
    """Mean SSIM of ``encoded`` against ``source`` over every frame, in dB."""
    done = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(encoded), "-i", str(source),
         "-lavfi", "[0:v][1:v]ssim", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.findall(r"SSIM .*All:[0-9.]+ \(([0-9.]+|inf)\)", done.stderr)
    if not found:
        raise RuntimeError(f"no SSIM in ffmpeg's output: {done.stderr[-500:]}")
    return float(found[-1])


def vmaf(encoded: Path, source: Path) -> float | None:
    """Mean VMAF of ``encoded`` against ``source``, or None if the build has no libvmaf."""
    if not has_vmaf():
        return None
    done = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(encoded), "-i", str(source),
         "-lavfi", "[0:v][1:v]libvmaf", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.findall(r"VMAF score: ([0-9.]+)", done.stderr)
    return float(found[-1]) if found else None


def _timed_encodes(jobs: list[tuple[Path, Path, str, int]]) -> list[tuple[float, float]]:
    """Wall and CPU (user + system) seconds of encodes run side by side on the pinned core.

    Each job is ``(src, dst, preset, crf)``; every encode starts at once, so each
    meets the same load. CPU seconds are what an encode costs whatever else runs
    on the core: on a shared machine they move much less than wall time.
    """
    start = time.monotonic()
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(jobs)

    def encode(i: int) -> None:
        proc = subprocess.Popen(
            encode_command(*jobs[i]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"encode failed ({proc.returncode}): {err[-500:]!r}")
        out[i] = (time.monotonic() - start, usage.ru_utime + usage.ru_stime)

    # One thread per encode waits for its own: each wall time ends when that encode ends.
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(encode, range(len(jobs))))
    return out


def _choose(rows: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    """The fastest candidate at SSIM no lower and size within budget on every clip kind.

    A candidate qualifies when, on every clip, its SSIM (dB, to 0.01) is at least
    the baseline's and its size at most :data:`SIZE_BUDGET` times the baseline's;
    among those, the one with the least total CPU time wins (on a shared machine
    the wall time also measures the neighbours).
    """
    base = next(r for r in rows if (r["preset"], r["crf"]) == BASELINE)
    qualified = []
    for r in rows:
        ok = all(
            round(r["clips"][k]["ssim_db"], 2) >= round(base["clips"][k]["ssim_db"], 2)
            and r["clips"][k]["bytes"] <= SIZE_BUDGET * base["clips"][k]["bytes"]
            for k in kinds
        )
        r["qualifies"] = ok
        if ok:
            qualified.append(r)
    best = min(qualified, key=lambda r: r.get("total_cpu_seconds", r["total_seconds"]))
    return {"preset": best["preset"], "crf": best["crf"]}


def bench(
    work: Path,
    *,
    size: tuple[int, int],
    seconds: float,
    candidates: tuple[tuple[str, int], ...] = CANDIDATES,
    kinds: tuple[str, ...] = KINDS,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Encode every clip kind with every candidate; choose the default from the curve."""
    folder = work / "curve"
    folder.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    uploads = {k: make_upload(folder, k, size, seconds) for k in kinds}
    log(f"  {len(uploads)} uploads ready in {time.monotonic() - t:.0f} s")
    with_vmaf = has_vmaf()
    rows: dict[tuple[str, int], dict[str, Any]] = {
        c: {"preset": c[0], "crf": c[1], "clips": {}} for c in candidates
    }
    for kind, src in uploads.items():
        jobs = [(src, folder / f"{kind}.{p}.crf{c}.mp4", p, c) for p, c in candidates]
        for (_, dst, preset, crf), (secs, cpu) in zip(jobs, _timed_encodes(jobs), strict=True):
            fig: dict[str, Any] = {
                "seconds": round(secs, 2),
                "cpu_seconds": round(cpu, 2),
                "bytes": dst.stat().st_size,
                "ssim_db": round(ssim_db(dst, src), 3),
                "vmaf": vmaf(dst, src) if with_vmaf else None,
            }
            rows[(preset, crf)]["clips"][kind] = fig
            log(f"  {kind} {preset}/{crf}: {secs:.1f} s ({cpu:.1f} s CPU), "
                f"{fig['bytes'] / 1e6:.1f} MB, SSIM {fig['ssim_db']:.2f} dB")  # fmt: skip
            dst.unlink()
    base = rows[BASELINE]
    for r in rows.values():
        r["total_seconds"] = round(sum(c["seconds"] for c in r["clips"].values()), 2)
        r["total_cpu_seconds"] = round(sum(c["cpu_seconds"] for c in r["clips"].values()), 2)
        r["speedup"] = {k: round(base["clips"][k]["seconds"] / c["seconds"], 3)
                        for k, c in r["clips"].items()}  # fmt: skip
        r["cpu_speedup"] = {k: round(base["clips"][k]["cpu_seconds"] / c["cpu_seconds"], 3)
                            for k, c in r["clips"].items()}  # fmt: skip
        r["size_ratio"] = {k: round(c["bytes"] / base["clips"][k]["bytes"], 3)
                           for k, c in r["clips"].items()}  # fmt: skip
        r["ssim_delta_db"] = {k: round(c["ssim_db"] - base["clips"][k]["ssim_db"], 3)
                              for k, c in r["clips"].items()}  # fmt: skip
    table = list(rows.values())
    chosen = _choose(table, list(kinds))
    return {
        "setup": {
            "size": f"{size[0]}x{size[1]}",
            "seconds": seconds,
            "kinds": list(kinds),
            "pinned_core": CORE if shutil.which("taskset") else None,
            "vmaf": with_vmaf,
            "baseline": {"preset": BASELINE[0], "crf": BASELINE[1]},
            "size_budget": SIZE_BUDGET,
            "speedup_min": SPEEDUP_MIN,
            "upload_kbps": max(300, PHONE_KBPS_1080P * size[0] * size[1] // (1920 * 1080)),
        },
        "candidates": table,
        "chosen": chosen,
        "current_default": _current_default(),
    }


def _current_default() -> dict[str, Any]:
    out = load_config().output
    return {"preset": out.x264_preset, "crf": out.crf}


def _row(section: dict[str, Any], preset: str, crf: int) -> dict[str, Any]:
    return next(r for r in section["candidates"] if (r["preset"], r["crf"]) == (preset, crf))


def targets(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's target for the default encode settings, checked on the curve."""
    s = section["setup"]
    chosen = section["chosen"]
    row = _row(section, chosen["preset"], chosen["crf"])
    wall = min(row["speedup"].values())
    speed = min(row.get("cpu_speedup", row["speedup"]).values())
    size = max(row["size_ratio"].values())
    ssim = min(row["ssim_delta_db"].values())
    met = speed >= s["speedup_min"] and size <= s["size_budget"] and ssim >= -0.005
    entry: dict[str, Any] = {
        "target": f"default x264 settings vs {s['baseline']['preset']}/CRF {s['baseline']['crf']}"
        f" ({chosen['preset']}/CRF {chosen['crf']} chosen)",
        "goal": f"≥ {s['speedup_min']}× faster per {s['size']} clip, SSIM no lower, "
        f"size ≤ +{s['size_budget'] - 1:.0%}",
        "measured": f"{speed:.2f}× in CPU time, {wall:.2f}× wall (slowest clip kind), "
        f"SSIM {ssim:+.2f} dB (worst), size {size - 1:+.0%} (largest)",
        "met": met,
    }
    if not met:
        base = _row(section, s["baseline"]["preset"], s["baseline"]["crf"])
        faster = [r for r in section["candidates"] if r is not base]
        best = max(faster, key=lambda r: min(r.get("cpu_speedup", r["speedup"]).values()))
        near = min(
            (r for r in faster if max(r["size_ratio"].values()) <= s["size_budget"]),
            key=lambda r: -min(r["ssim_delta_db"].values()),
            default=best,
        )
        lost = {k: v for k, v in near["ssim_delta_db"].items() if v < 0}
        entry["why"] = (
            f"no faster pair keeps SSIM on every clip within the size budget. The closest, "
            f"{near['preset']}/CRF {near['crf']}, takes "
            f"{min(near.get('cpu_speedup', near['speedup']).values()):.2f}× less CPU but loses "
            + ", ".join(f"{-v:.2f} dB on {k}" for k, v in lost.items())
            + "; on those clips every pair's file is about the same size (the VBV cap, "
            "`maxrate_kbps`, binds), so only a slower preset's better compression buys SSIM "
            "and a lower CRF cannot. The default stays; see section 7."
        )
    return [entry]


def markdown(section: dict[str, Any]) -> list[str]:
    """Section 7 of ``results.md``: the curve, per clip kind, and the choice."""
    s = section["setup"]
    kinds = s["kinds"]
    chosen = section["chosen"]
    lines = [
        "",
        "## 7. x264 presets and CRFs: the curve the default comes from",
        "",
        f"{len(kinds)} generated uploads of {s['seconds']:g} s at {s['size']} "
        f"({', '.join(kinds)}; H.264 at {s['upload_kbps'] / 1000:g} Mbit/s, a phone's rate), "
        "each encoded by every candidate with the pipeline's own encoder settings "
        "(`encoder_args`: GOP, VBV cap, High profile, level 4.2), video only, pinned to "
        f"core {s['pinned_core']} with `taskset`; for each clip all candidates run side by "
        "side on that core, started at once, one encode each. Time includes decoding the "
        "upload; the CPU time (user + system) of each encode is its cost, the wall time is "
        "how long it took among the other candidates and the machine's other load. "
        "SSIM is against the decoded upload, in dB (ffmpeg's `ssim`); VMAF "
        + ("as well." if s["vmaf"] else "is not measured: this ffmpeg build has no `libvmaf`.")
        + " What the uploads are: `talking-head` is scikit-image's astronaut photograph (a real "
        "photo) cut to the frame, zooming and drifting like a hand-held phone, with sensor "
        "grain; `motion` is scikit-image's coffee photograph swept across and pushed in and "
        "out fast, as when walking with the phone, with grain (everything moves every frame); "
        "`dark` is the talking head at a fifth of the light with "
        "high-ISO grain. They stand in for phone clips because no video can be downloaded "
        "when the benchmark runs; real footage would move the absolute figures, the "
        "comparison between presets much less (same content for every candidate).",
        "",
        "| preset, CRF | "
        + " | ".join(f"{k}: wall (CPU) time, size, SSIM" for k in kinds)
        + " | speed-up, CPU (wall), min | size (max) | SSIM Δ (min) | qualifies |",
        "| --- | " + " | ".join("---" for _ in kinds) + " | --- | --- | --- | --- |",
    ]
    for r in section["candidates"]:
        cells = [
            f"{c['seconds']:.1f} s ({c.get('cpu_seconds', float('nan')):.1f} s), "
            f"{c['bytes'] / 1e6:.2f} MB, {c['ssim_db']:.2f} dB"
            for c in (r["clips"][k] for k in kinds)
        ]
        cpu = min(r.get("cpu_speedup", {"": float("nan")}).values())
        is_chosen = (r["preset"], r["crf"]) == (chosen["preset"], chosen["crf"])
        mark = " **(chosen)**" if is_chosen else ""
        lines.append(
            f"| {r['preset']}, {r['crf']}{mark} | " + " | ".join(cells)
            + f" | {cpu:.2f}× ({min(r['speedup'].values()):.2f}×) "
            f"| {max(r['size_ratio'].values()) - 1:+.0%} "
            f"| {min(r['ssim_delta_db'].values()):+.2f} dB | {'yes' if r['qualifies'] else 'no'} |"
        )  # fmt: skip
    lines += [
        "",
        f"A candidate qualifies when on every clip its SSIM is at least the baseline's "
        f"({s['baseline']['preset']}/CRF {s['baseline']['crf']}) and its file at most "
        f"{s['size_budget']:.2f}× the baseline's; the one with the least total CPU time is "
        "chosen (CPU seconds of the pinned encode: what it costs whatever else runs on the "
        "core; the wall time on this shared machine also measures the neighbours): "
        f"**{chosen['preset']}, CRF {chosen['crf']}** (the default in "
        f"`processing/defaults.toml` when this ran: {section['current_default']['preset']}, CRF "
        f"{section['current_default']['crf']}).",
    ]
    return lines
