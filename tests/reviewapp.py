"""Helpers for the review app's tests: a served app, a paused campaign, a signed-in browser."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from processing.config import load_config
from processing.storage import open_output
from processing.web.app import CutSender, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
DOCS = Path(__file__).resolve().parent.parent / "docs"
PASSWORDS = {"ada": "correct horse battery", "bo": "staple battery horse"}
NAMES = {"ada": "Ada Lovelace", "bo": "Bo"}
HASHTAG = "#100forJustice"
ARABIC_MESSAGE = f"لن ننسى {HASHTAG}"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Served:
    """One running review app."""

    url: str
    out: Path
    port: int

    def raw_get(
        self, path: str, cookie: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """GET ``path`` exactly as written (no client-side ``..`` clean-up)."""
        status, _, body = self.raw(path, cookie, headers)
        return status, body

    def raw(
        self, path: str, cookie: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in ({"Cookie": cookie} if cookie else {}).items() | (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    out: Path,
    accounts_file: Path,
    sender: CutSender | None = None,
    *,
    uri: str = "",
    cfg: Any = None,
) -> Iterator[Served]:
    """The review app for ``out`` (or ``uri``, an s3:// output, with its ``cfg``) on a free port of
    127.0.0.1, as ``reel review serve`` runs it."""
    cfg = cfg or load_config()
    app = create_app(open_output(uri or str(out), cfg), accounts_file, cfg, sender=sender)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the review app did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", out, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def report(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "report.json").read_text("utf-8"))["submissions"]


@dataclass
class Campaign:
    """A real ``remembrance-campaign`` run, paused for the editors, and its output."""

    out: Path
    run_id: str
    thread: threading.Thread
    result: dict[str, Any]


def campaign_uploads(folder: Path) -> Path:
    """Four clips with consent (one with an Arabic message), one without a sidecar."""
    import mediagen as mg

    folder.mkdir(parents=True)
    sidecars: list[dict[str, Any] | None] = [
        {"name": "Supporter 0", "consent": True},
        {"name": "محمد", "consent": True, "language": "ar", "message": ARABIC_MESSAGE},
        {"name": "Supporter 2", "consent": True},
        {"name": "Supporter 3", "consent": True},
        None,  # no consent: rendered for review, may not be approved
    ]
    for i, sidecar in enumerate(sidecars):
        mg.make_clip(folder / f"clip{i}.mp4", duration=2, size=(320, 180), lufs=-16 - 2 * i)
        if sidecar is not None:
            (folder / f"clip{i}.json").write_text(json.dumps(sidecar, ensure_ascii=False))
    return folder


def paused_campaign(root: Path) -> Campaign:
    """The editors' situation: the campaign processed the uploads and waits for them.

    Cheaper than a copy of the session batch (five 2 s clips, x264 superfast)
    and it is the real thing "Send the cut" must resume at the end.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
    from prefect.client.schemas.objects import StateType

    from flows.campaign import remembrance_campaign
    from flows.params import CampaignParams

    src, out = campaign_uploads(root / "uploads"), root / "out"
    config = root / "campaign.toml"
    config.write_text('[output]\nx264_preset = "superfast"\n', "utf-8")
    params = CampaignParams(source=str(src), out=str(out), config=str(config))
    result: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: result.update(state=remembrance_campaign(params, return_state=True)),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and thread.is_alive():
        time.sleep(1)
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=StateTypes(any_=[StateType.PAUSED]))
                )
            )
        paused = [r for r in runs if r.parameters["params"]["out"] == str(out)]
        if paused:
            return Campaign(out, str(paused[0].id), thread, result)
    raise AssertionError(f"the campaign never paused for the editors: {result}")


def sign_in(browser: Any, app: Served, user: str, viewport: dict[str, int]) -> tuple[Any, Any]:
    """A fresh browser profile signed in as ``user`` through the form; (context, page)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(app.url + "/")
    assert page.url == app.url + "/login"  # no session: the sign-in form
    page.fill("#user", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(app.url + "/")
    page.wait_for_selector("#order-summary[data-clips]")  # the script has run
    page.problems = problems  # type: ignore[attr-defined]
    return context, page


def saved(page: Any, text: str = "Saved.") -> None:
    page.wait_for_function(
        "t => document.getElementById('status').textContent.includes(t)", arg=text, timeout=15000
    )


def order_shown(page: Any) -> list[str]:
    return page.eval_on_selector_all("#order-list li", "els => els.map(e => e.dataset.id)")


def shot(page: Any, name: str) -> None:
    """A screenshot of the top of the page for README: docs/NAME, a small palette PNG."""
    from PIL import Image

    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)  # let posters settle
    path = DOCS / name
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(path))
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    assert path.stat().st_size < 200_000


def cookie(context: Any) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())


def wait_for_state(run_id: str, final: bool, timeout: float = 300) -> Any:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(run_id))
        if run.state and (run.state.is_final() if final else run.state.is_paused()):
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not get there: {run.state}")


def clips_in(out: Path) -> list[str]:
    manifest = json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))
    return [s["id"] for s in manifest["segments"] if s["kind"] == "clip"]


def send_cut(page: Any) -> str:
    with page.expect_response("**/api/send") as response:
        page.click("#send")
    assert response.value.status == 200, response.value.text()
    return str(response.value.json()["run_id"])
