"""post.txt beside each social rendition: calls to action per language, YouTube chapters."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from processing.config import load_config
from processing.social.post_text import (
    PLACEHOLDER,
    placeholder_warnings,
    post_text,
    write_post_texts,
    youtube_chapter_lines,
)

CFG = load_config()
REAL = {
    lang: {
        "petition_link": f"https://petition.test/{lang}",
        "donate_link": f"https://give.test/{lang}",
    }
    for lang in CFG.cards
}
CHAPTERS = [(0.0, "Title card"), (6.0, "Anna, Berlin"), (31.5, "Anonymous supporter"),
            (38.0, "Sasha, Tbilisi"), (70.0, "Lena, Paris"), (95.0, "Call to action")]  # fmt: skip


def _parse_chapters(text: str) -> list[tuple[int, str]]:
    """The timestamps YouTube would read: lines that start with m:ss or h:mm:ss."""
    found = []
    for line in text.splitlines():
        m = re.fullmatch(r"(?:(\d+):)?(\d+):(\d\d) (.+)", line)
        if m:
            h, mm, ss, title = m.groups()
            found.append((int(h or 0) * 3600 + int(mm) * 60 + int(ss), title))
    return found


def test_post_text_per_language_with_calls_to_action_and_youtube_chapters(tmp_path: Path) -> None:
    cfg = load_config(overrides={"cards": REAL})
    written = write_post_texts(tmp_path, cfg, CHAPTERS, duration=103.0)
    assert set(written) == set(cfg.cards) and written[cfg.compilation.language].name == "post.txt"
    assert not list(tmp_path.glob(".*.part"))
    for lang, path in written.items():
        text, card = path.read_text("utf-8"), cfg.cards[lang]
        for line in (card.remembrance_line, card.petition_call, card.donate_line):
            assert line in text
        # Each link on its own line right under its call, so apps make it a tappable link.
        lines = text.splitlines()
        assert lines[lines.index(card.petition_call) + 1] == f"https://petition.test/{lang}"
        assert lines[lines.index(card.donate_line) + 1] == f"https://give.test/{lang}"
        assert cfg.campaign.hashtag in text
        chapters = _parse_chapters(text)
        starts = [s for s, _ in chapters]
        # The 6 s title card opens Anna's chapter, the 6.5 s clip opens Sasha's, and the
        # 8 s end card closes Lena's: YouTube drops every chapter if one is under 10 s.
        assert starts == [0, 31, 70], chapters
        assert [t for _, t in chapters] == ["Anna, Berlin", "Sasha, Tbilisi", "Lena, Paris"]
    assert "donate" in written["en"].read_text("utf-8").lower()
    assert "justice" in written["en"].read_text("utf-8")


def test_chapters_youtube_would_ignore_are_left_out() -> None:
    assert youtube_chapter_lines([(0.0, "Title"), (6.0, "One"), (22.0, "End")]) == []
    three = [(0.0, "Title"), (12.0, "One"), (30.0, "End")]
    assert len(youtube_chapter_lines(three)) == 3
    assert youtube_chapter_lines(three, duration=35.0) == []  # the last is 5 s long
    hour = youtube_chapter_lines([(0.0, "T"), (1800.0, "A"), (3725.0, "End")])
    assert hour[-1] == "1:02:05 End" and hour[0] == "0:00:00 T"
    assert not _parse_chapters(post_text(CFG.card_text(), "#100forJustice"))


def test_placeholder_links_are_reported_until_set(tmp_path: Path) -> None:
    shipped = placeholder_warnings(CFG)
    assert len(shipped) == 2 * len(CFG.cards)
    assert all(PLACEHOLDER in w for w in shipped)
    assert placeholder_warnings(load_config(overrides={"cards": REAL})) == []
    conf = tmp_path / "campaign.toml"
    conf.write_text('[cards.en]\npetition_link = "https://petition.test/x"\n', "utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "config", "--check", str(conf)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "valid" in out
    assert "cards.en.donate_link" in out and "cards.en.petition_link" not in out
