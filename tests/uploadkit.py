"""Helpers for tests/test_upload.py: the upload site as a process, and a TCP proxy to cut.

Both are real: ``reel upload serve`` runs in its own process, and the proxy
forwards real sockets and can drop every connection mid-upload, as a phone
losing its network does.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REEL = Path(sys.executable).with_name("reel")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, **upload: Any) -> Path:
    settings = {"max_mb": 1, "chunk_kb": 32, "starts_per_hour": 20, "mb_per_hour": 100}
    settings.update(upload)
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    path = tmp_path / "campaign.toml"
    path.write_text(
        "[output]\nwidth = 320\nheight = 240\n"
        "[compilation]\nyear = 2027\ntitle_seconds = 1.0\nend_seconds = 1.0\n"
        f"[upload]\n{body}\n",
        "utf-8",
    )
    return path


class Site:
    """``reel upload serve`` in a process of its own, on a free port."""

    def __init__(
        self,
        tmp_path: Path,
        target: Path | None = None,
        env: dict[str, str] | None = None,
        s3_target: str | None = None,
        **upload: Any,
    ):
        self.target = target or tmp_path / "uploads"
        self.config = _config(tmp_path, **upload)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(REEL), "upload", "serve", "--target", s3_target or str(self.target),
             "--config", str(self.config), "--port", str(self.port)],
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("reel upload serve did not start") from None
                time.sleep(0.2)

    def stored(self) -> list[str]:
        """Every file under the target (the page's working files included)."""
        return sorted(p.relative_to(self.target).as_posix() for p in self.target.rglob("*")
                      if p.is_file() and p.name != "lock")  # fmt: skip

    def arrived(self) -> list[Path]:
        return sorted((self.target / "web").iterdir())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Proxy:
    """A TCP proxy to ``port`` that can cut every connection after ``cut_after`` bytes up."""

    def __init__(self, port: int, cut_after: int | None = None):
        self.upstream = port
        self.port = _free_port()
        self.cut_after = cut_after
        self.sent_up = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None

    def start(self) -> None:
        self.sent_up = 0
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def kill(self) -> None:
        """Stop listening and drop every open connection, as a lost network does."""
        with self._lock:
            conns, self._conns = self._conns, []
        if self._server:
            # shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            with self._lock:
                self._conns += [client, up]
            threading.Thread(target=self._pipe, args=(client, up, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upwards: bool) -> None:
        while True:
            try:
                data = src.recv(16384)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
            if upwards:
                with self._lock:
                    self.sent_up += len(data)
                    cut = self.cut_after is not None and self.sent_up >= self.cut_after
                if cut:
                    self.cut_after = None
                    threading.Thread(target=self.kill, daemon=True).start()
                    return
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
