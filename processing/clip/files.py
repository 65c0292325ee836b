"""One value per clip that owns where its files are: the only place their paths are spelled.

A submission ``<id>`` leaves, under the output folder ``OUT``:

* ``clips/<id>.mp4``: the finished clip;
* ``clips/<id>.flac``: its lossless audio master (the compilation mixes from it);
* ``clips/<id>.json``: its record (render key, stream signature, quality), written last;
* ``clips/<id>.9x16.mp4``, ``clips/<id>.1x1.mp4``: its social renditions (``social.renditions``);
* ``logs/<id>.log``: every ffmpeg command run for it, with what ffmpeg said.

A new rendition is one more field here, and :meth:`ClipFiles.rendered` lists
it: publishing, discarding and withdrawing follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CLIPS = "clips"
LOGS = "logs"
ASPECTS = ("9:16", "1:1")
"""Every social rendition a clip can have (``social.renditions`` picks among them)."""


def aspect_slug(aspect: str) -> str:
    """``"9:16"`` → ``"9x16"``: the rendition's name in file names and keys."""
    return aspect.replace(":", "x")


@dataclass(frozen=True)
class ClipFiles:
    """Where submission ``sid``'s files are, in the output folder ``out`` and as store keys."""

    out: Path
    sid: str
    aspects: tuple[str, ...] = ()
    """The social renditions this render makes (``social.renditions``), in order."""

    @property
    def clip_key(self) -> str:
        """The clip, relative to the output (the report's ``output``)."""
        return f"{CLIPS}/{self.sid}.mp4"

    @property
    def master_key(self) -> str:
        return f"{CLIPS}/{self.sid}.flac"

    @property
    def record_key(self) -> str:
        return f"{CLIPS}/{self.sid}.json"

    @property
    def log_key(self) -> str:
        return f"{LOGS}/{self.sid}.log"

    def rendition_key(self, aspect: str) -> str:
        """The ``aspect`` (``"9:16"``, ``"1:1"``) rendition of the clip, relative to the output."""
        return f"{CLIPS}/{self.sid}.{aspect_slug(aspect)}.mp4"

    def rendition(self, aspect: str) -> Path:
        return self.out / self.rendition_key(aspect)

    @property
    def clip(self) -> Path:
        return self.out / self.clip_key

    @property
    def master(self) -> Path:
        return self.out / self.master_key

    @property
    def record(self) -> Path:
        return self.out / self.record_key

    @property
    def log(self) -> Path:
        return self.out / self.log_key

    def rendered(self) -> list[str]:
        """The keys a render produces, in publishing order: media first, the record last.

        The record tells every worker the clip is done, so it goes up after
        the files it describes (and is deleted first, see :meth:`withdrawn`).
        """
        extra = [self.rendition_key(a) for a in self.aspects]
        return [self.clip_key, self.master_key, *extra, self.record_key]

    def withdrawn(self) -> list[str]:
        """The keys to delete when the clip goes: the record first, so nobody reuses it."""
        every = [self.rendition_key(a) for a in ASPECTS]  # whatever the settings were then
        return [self.record_key, self.clip_key, self.master_key, *every]

    def discard(self) -> None:
        """Remove the local files of a render (failed, interrupted, rejected or withdrawn)."""
        for key in self.withdrawn():
            (self.out / key).unlink(missing_ok=True)

    def fresh_log(self) -> Path:
        """The submission's log, emptied for a new render; returns its path."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("", "utf-8")
        return self.log

    def log_line(self, text: str) -> None:
        """Append one line to the submission's log."""
        with self.log.open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text + "\n")
