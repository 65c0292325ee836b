"""The review app (``reel review serve``) in Debian's chromium, at desktop and phone widths.

A real ``remembrance-campaign`` run on the harness server processes five tiny
uploads and pauses for the editors; a real uvicorn server on 127.0.0.1 serves
its output. Editors sign in through the form, decide with the page's buttons,
and the decisions the server recorded are read back from ``decisions.json``.
The last test's "Send the cut" resumes that paused run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from processing.decisions import apply_decisions, history, load_decisions
from processing.web import accounts
from tests import reviewapp as rv

#: The module's first test also waits for the campaign to process and pause.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "editors.json"
    for user, password in rv.PASSWORDS.items():
        accounts.add_editor(path, user, password, rv.NAMES[user])
    return path


@pytest.fixture(scope="module")
def campaign(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> rv.Campaign:
    """The editors' situation: the campaign processed the uploads and waits for them.

    Cheaper than a copy of the session batch (five 2 s clips, x264 superfast)
    and it is the real thing "Send the cut" must resume at the end.
    """
    return rv.paused_campaign(tmp_path_factory.mktemp("campaign"))


@pytest.fixture(scope="module")
def review_out(campaign: rv.Campaign) -> Path:
    return campaign.out


@pytest.fixture(scope="module")
def app(review_out: Path, accounts_file: Path) -> Iterator[rv.Served]:
    with rv.serve(review_out, accounts_file) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not rv.CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make setup-test` (TEST_DEBS)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(rv.CHROMIUM), args=rv.CHROMIUM_ARGS, headless=True
        )
        yield b
        b.close()


@dataclass
class Ids:
    accepted: list[str]
    no_consent: str
    arabic: str


@pytest.fixture(scope="module")
def ids(review_out: Path) -> Ids:
    subs = rv.report(review_out)
    return Ids(
        accepted=[e["id"] for e in subs if e["status"] == "accepted" and e.get("output")],
        no_consent=next(e["id"] for e in subs if e.get("code") == "no_consent" and e.get("output")),
        arabic=next(e["id"] for e in subs if e.get("message") == rv.ARABIC_MESSAGE),
    )


# --------------------------------------------------------------------- access


def test_nothing_is_reachable_without_a_session(app: rv.Served, ids: Ids, browser: Any) -> None:
    clip = f"/media/clips/{ids.accepted[0]}.mp4"
    for path in [clip, "/api/decisions", f"/media/review/media/{ids.accepted[0]}.jpg"]:
        status, body = app.raw_get(path)
        assert status == 401, (path, status)
        assert b"ftyp" not in body and b"approved" not in body
    status, _ = app.raw_get("/")
    assert status == 303  # the page sends a browser to the sign-in form

    context, page = rv.sign_in(browser, app, "ada", rv.DESKTOP)
    cookie = context.cookies()[0]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert cookie["name"].startswith("__Host-")
    status, body = app.raw_get(clip, rv.cookie(context))
    assert status == 200 and body[4:8] == b"ftyp"
    # Players seek with range requests: the app answers with exactly those bytes.
    status, head, part = app.raw(clip, rv.cookie(context), {"Range": "bytes=100-199"})
    assert status == 206 and part == body[100:200]
    assert head["content-range"] == f"bytes 100-199/{len(body)}"
    # A change without the CSRF token, or sent from another site's page, is refused.
    no_token = page.request.post(
        app.url + "/api/decisions",
        data={"action": "decide", "id": ids.accepted[0], "choice": "rejected"},
    )
    assert no_token.status == 403
    csrf = page.evaluate("JSON.parse(document.getElementById('review-data').textContent).app.csrf")
    foreign = page.request.post(
        app.url + "/api/decisions",
        data={"action": "decide", "id": ids.accepted[0], "choice": "rejected"},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert foreign.status == 403
    assert (load_decisions(app.out) is None) or ids.accepted[0] not in load_decisions(
        app.out
    ).decisions
    headers = page.request.get(app.url + "/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert page.problems == []  # type: ignore[attr-defined]
    context.close()


def test_sign_in_is_rate_limited(review_out: Path, accounts_file: Path, browser: Any) -> None:
    with rv.serve(review_out, accounts_file) as app:  # its own limiter: other tests sign in
        _guess_six_times(app, browser)


def _guess_six_times(app: rv.Served, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    statuses = []
    for _ in range(6):
        r = page.request.post(
            app.url + "/login", form={"user": "bo", "password": "wrong password!"}
        )
        statuses.append(r.status)
    right = page.request.post(
        app.url + "/login", form={"user": "bo", "password": rv.PASSWORDS["bo"]}, max_redirects=0
    )
    context.close()
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    assert right.status == 429 and "retry-after" in right.headers  # even the right password waits


def test_paths_outside_the_output_are_refused(app: rv.Served, browser: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"\x00\x00\x00\x18ftypsecret")
    link = app.out / "clips" / "escape.mp4"
    link.symlink_to(secret)
    try:
        _try_paths(app, browser)
    finally:
        link.unlink()


def _try_paths(app: rv.Served, browser: Any) -> None:
    context, _ = rv.sign_in(browser, app, "ada", rv.DESKTOP)
    cookie = rv.cookie(context)
    context.close()
    for path in [
        "/media/clips/../report.json",
        "/media/clips/..%2freport.json",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/clips/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/media/report.json",
        "/media/clips/escape.mp4",
        "/media/.work/lock",
        "/media/clips/" + "a" * 300 + ".mp4",
    ]:
        status, body = app.raw_get(path, cookie)
        assert status in (400, 404), (path, status)
        assert b"secret" not in body and b"submissions" not in body and b"root:" not in body


# --------------------------------------------------------------------- deciding


def test_editors_decide_in_the_browser_and_the_server_records_it(
    app: rv.Served, ids: Ids, browser: Any
) -> None:
    a, b, c, d = ids.accepted[:4]
    context, page = rv.sign_in(browser, app, "ada", rv.DESKTOP)
    before = len(history(app.out))
    for sid in (a, b, c):
        page.click(f"#c-{sid} button[data-act=approve]")
        rv.saved(page, "number")
    page.click(f"#c-{d} button[data-act=reject]")
    rv.saved(page, "Rejected")
    page.click(f"#c-{c} button[data-act=earlier]")  # a, c, b
    rv.saved(page, "Moved")
    recorded = load_decisions(app.out)
    assert recorded is not None
    assert list(recorded.order) == [a, c, b]
    assert recorded.decisions == {a: "approved", b: "approved", c: "approved", d: "rejected"}
    assert recorded.applied_by == "Ada Lovelace"
    assert len(history(app.out)) == before + 5  # every click is one recorded change
    assert rv.order_shown(page) == [a, c, b]
    # The badge follows the decision in force; the summary counts what will be compiled.
    assert page.inner_text(f"#c-{d} .status") == "rejected by an editor"
    assert page.inner_text(f"#c-{a} .status") == "approved"
    durations = {e["id"]: e["duration"] for e in rv.report(app.out)}
    summary = page.locator("#order-summary")
    assert summary.get_attribute("data-clips") == "3"
    seconds = float(summary.get_attribute("data-seconds") or 0)
    assert seconds == pytest.approx(durations[a] + durations[b] + durations[c], abs=0.01)
    page.reload()
    assert rv.order_shown(page) == [a, c, b]  # from the server, not this browser
    rv.shot(page, "review-app-desktop.png")
    assert page.problems == []  # type: ignore[attr-defined]
    context.close()

    # Another editor on a phone: the same order, moved with the running order's button.
    phone_ctx, phone = rv.sign_in(browser, app, "bo", rv.PHONE)
    assert rv.order_shown(phone) == [a, c, b]
    phone.click(f"#order-list li[data-id='{a}'] button[data-order-act=later]")
    rv.saved(phone, "Moved")
    recorded = load_decisions(app.out)
    assert recorded is not None and list(recorded.order) == [c, a, b]
    assert recorded.applied_by == "Bo"
    assert phone.evaluate("document.documentElement.scrollWidth") <= rv.PHONE["width"]
    rv.shot(phone, "review-app-phone.png")
    phone_ctx.close()


def test_approving_a_clip_without_consent_is_refused_with_the_reason(
    app: rv.Served, ids: Ids, browser: Any
) -> None:
    context, page = rv.sign_in(browser, app, "bo", rv.PHONE)
    before = load_decisions(app.out)
    page.click(f"#c-{ids.no_consent} button[data-act=approve]")
    rv.saved(page, "Not saved")
    assert "no consent" in page.inner_text("#status")
    assert "no consent" in page.inner_text(f"#c-{ids.no_consent} .save-error")
    assert page.get_attribute(f"#c-{ids.no_consent}", "data-decision") == "undecided"
    after = load_decisions(app.out)
    assert (after.as_dict() if after else None) == (before.as_dict() if before else None)
    # Decisions recorded elsewhere (a file) that approve it: the page leaves it out of the count.
    current = after.as_dict() if after else {"order": [], "decisions": {}}
    order = [*current["order"], ids.no_consent]
    apply_decisions(
        {**current, "version": 1, "editor": "file", "decided_at": "2027-03-20T18:00:00+00:00",
         "order": order, "decisions": {**current["decisions"], ids.no_consent: "approved"}},
        app.out,
    )  # fmt: skip
    page.reload()
    page.wait_for_selector("#order-summary[data-clips]")
    summary = page.locator("#order-summary")
    assert summary.get_attribute("data-clips") == str(len(order) - 1)
    assert "left out" in summary.inner_text() and "no consent" in summary.inner_text()
    context.close()


def test_right_to_left_text_keeps_the_hashtag_whole(app: rv.Served, ids: Ids, browser: Any) -> None:
    context, page = rv.sign_in(browser, app, "ada", rv.DESKTOP)
    # Where "#" and the "1" after it are drawn: the hashtag reads left to right.
    xs = page.evaluate(
        """([id, tag]) => {
          const q = document.querySelector('#c-' + id + ' blockquote.message');
          const walker = document.createTreeWalker(q, NodeFilter.SHOW_TEXT);
          let node; const found = {};
          while ((node = walker.nextNode())) {
            const at = node.textContent.indexOf(tag);
            if (at >= 0) {
              for (const [k, i] of [['hash', at], ['one', at + 1], ['e', at + tag.length - 1]]) {
                const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                found[k] = r.getBoundingClientRect().left;
              }
            }
          }
          return found;
        }""",
        [ids.arabic, rv.HASHTAG],
    )
    context.close()
    assert xs["hash"] < xs["one"] < xs["e"], xs


# --------------------------------------------------------------------- sending the cut


def test_send_the_cut_resumes_the_paused_campaign_then_builds_again(
    campaign: rv.Campaign, accounts_file: Path, browser: Any
) -> None:
    """Today's pause input (``EditorDecision``: editor, include) is what the app fills in."""
    from flows.review_send import PrefectCutSender

    out = campaign.out
    first, second, third = [e["id"] for e in rv.report(out) if e["status"] == "accepted"][:3]
    empty = {"version": 1, "editor": "staff", "decided_at": "2027-03-20T18:00:00+00:00"}
    apply_decisions({**empty, "order": [], "decisions": {}}, out)  # a clean slate

    sender = PrefectCutSender(out.parent / "campaign.toml")  # the campaign's settings
    with rv.serve(out, accounts_file, sender) as served:
        context, page = rv.sign_in(browser, served, "ada", rv.DESKTOP)
        page.click(f"#c-{third} button[data-act=approve]")
        rv.saved(page, "number 1")
        page.click(f"#c-{first} button[data-act=approve]")
        rv.saved(page, "number 2")
        page.click(f"#c-{second} button[data-act=reject]")
        rv.saved(page, "Rejected")
        assert rv.send_cut(page) == campaign.run_id  # the paused run, not a new one
        campaign.thread.join(timeout=300)
        assert campaign.result["state"].is_completed(), campaign.result["state"]
        assert rv.clips_in(out) == [third, first]
        # The page reloads itself and previews the new compilation.
        page.wait_for_selector("#compilation-video", timeout=60000)
        assert page.get_attribute("#compilation-video", "src").endswith(".mp4")

        # No paused run any more: Send the cut starts build-compilation with the new decisions.
        page.click(f"#c-{second} button[data-act=approve]")
        rv.saved(page, "number 3")
        run_id = rv.send_cut(page)
        assert run_id != campaign.run_id
        run = rv.wait_for_state(run_id, final=True)
        assert run.state.is_completed(), run.state
        assert run.name and rv.clips_in(out) == [third, first, second]
        # The page reloads with the new compilation (cards count as chapters: compare files).
        new = json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))["output"]
        page.wait_for_function(
            "f => (document.querySelector('#compilation-video') || {src: ''}).src.endsWith(f)",
            arg=new,
            timeout=60000,
        )
        page.wait_for_selector("#compilation-video")
        rv.shot(page, "review-app-sent.png")
        assert page.problems == []  # type: ignore[attr-defined]
        context.close()


def test_accounts_hold_only_slow_hashes_and_the_cli_explains_refusals(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = tmp_path / "editors.json"
    reel = [sys.executable, "-m", "flows.cli"]
    ok = subprocess.run(
        [*reel, "review", "add-editor", "cy", "--name", "Cy", "--accounts", str(path),
         "--password-stdin"],
        input="a long enough secret\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    text = path.read_text("utf-8")
    assert "a long enough secret" not in text and "scrypt" in text
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert accounts.check(path, "cy", "a long enough secret") == accounts.Editor("cy", "Cy")
    assert accounts.check(path, "cy", "a long enough secreT") is None
    assert accounts.check(path, "nobody", "a long enough secret") is None
    short = subprocess.run(
        [*reel, "review", "add-editor", "cy", "--accounts", str(path), "--password-stdin"],
        input="short\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert short.returncode == 2 and short.stderr.count("\n") == 1, short.stderr
    assert "12 to 1024 characters" in short.stderr
    served = subprocess.run(
        [*reel, "review", "serve", "--out", str(tmp_path), "--accounts", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert served.returncode == 2 and "add an editor first" in served.stderr
    assert "Traceback" not in served.stderr
