"""The upload page and the private-link page, as HTML (every text escaped here).

No inline script or style (the Content-Security-Policy forbids them): the
page's behaviour is ``upload.js`` and its look ``upload.css``, both served by
the app. Texts come from ``[upload_text.<lang>]`` in the campaign config.
"""

from __future__ import annotations

from html import escape

#: Languages offered for "the language you speak in the video" (BCP 47 tag, own name).
SPOKEN = (
    ("en", "English"), ("ru", "Русский"), ("ce", "Нохчийн"), ("uk", "Українська"),
    ("de", "Deutsch"), ("fr", "Français"), ("es", "Español"), ("it", "Italiano"),
    ("pl", "Polski"), ("tr", "Türkçe"), ("ar", "العربية"), ("he", "עברית"),
)  # fmt: skip

#: Messages the script shows for the server's refusal codes.
MESSAGES = ("no_file", "too_large", "not_video", "rate_limited", "bad_token", "failed")


def _head(lang: str, title: str) -> str:
    return (
        f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{escape(title)}</title>'
        '<link rel="stylesheet" href="/static/upload.css"></head><body><main>'
    )


def _switcher(lang: str, langs: dict[str, str], path: str) -> str:
    links = [
        f'<a href="{escape(path)}?lang={escape(code)}" hreflang="{escape(code)}"'
        + (' aria-current="true"' if code == lang else "")
        + f">{escape(name)}</a>"
        for code, name in langs.items()
    ]
    return f'<nav class="langs">{" · ".join(links)}</nav>'


#: The scripts of each kind of target: tus through the app, or S3 multipart to the bucket.
SCRIPTS = {
    "folder": ("tus.min.js", "upload.js"),
    "s3": ("uppy.min.js", "upload-s3.js", "upload.js"),
}


def _original_deleted(text: str, days: int) -> str:
    """When the original upload (GPS and device tags included) is deleted; nothing if never."""
    return f"<p class=privacy>{text.replace('{days}', str(days))}</p>" if days > 0 else ""


def upload_page(
    t: dict[str, str],
    lang: str,
    langs: dict[str, str],
    token: str,
    cfg: dict[str, int],  # max_bytes, chunk_bytes, keep_days
    mode: str = "folder",
) -> str:
    """The contributor's page in ``lang`` (``t`` its texts), carrying the CSRF ``token``.

    ``mode`` is ``"folder"`` (tus to this app) or ``"s3"`` (S3 multipart to the bucket).
    """
    e = {k: escape(v) for k, v in t.items()}
    spoken = "".join(
        f'<option value="{c}"{" selected" if c == lang else ""}>{escape(n)}</option>'
        for c, n in SPOKEN
    )
    messages = "".join(f' data-msg-{k.replace("_", "-")}="{e[k]}"' for k in MESSAGES)
    return (
        _head(lang, t["title"])
        + _switcher(lang, langs, "/")
        + f"<h1>{e['title']}</h1><p>{e['intro']}</p><p class=privacy>{e['privacy']}</p>"
        + _original_deleted(e["original_deleted"], cfg.get("keep_days", 0))
        + f'<form id="upload" data-csrf="{escape(token)}" data-max="{cfg["max_bytes"]}"'
        f' data-mode="{escape(mode)}"'
        f' data-chunk="{cfg["chunk_bytes"]}" data-sending="{e["sending"]}"'
        f' data-retry="{e["retry"]}"{messages} novalidate>'
        f'<label class=file>{e["video"]}<input type="file" id="video" name="video"'
        ' accept="video/*"></label>'
        f'<label class=file>{e["record"]}<input type="file" id="camera" name="camera"'
        ' accept="video/*" capture="user"></label>'
        '<p id="chosen" class="chosen"></p>'
        f'<label>{e["name"]}<input type="text" id="name" name="name" maxlength="200"'
        ' autocomplete="name"></label>'
        f'<label>{e["language"]}<select id="language" name="language">{spoken}</select></label>'
        f'<label>{e["message"]}<textarea id="message" name="message" maxlength="1000"'
        ' rows="3"></textarea></label>'
        f'<label class=check><input type="checkbox" id="consent" name="consent">'
        f" <span>{e['consent']}</span></label>"
        f'<label class=check><input type="checkbox" id="anonymize" name="anonymize">'
        f" <span>{e['anonymize']}</span></label>"
        # A field people never see or fill; a form-filling bot does.
        '<div class="hp" aria-hidden="true"><label>Website<input type="text" id="website"'
        ' name="website" tabindex="-1" autocomplete="off"></label></div>'
        f'<button type="submit" id="send">{e["submit"]}</button>'
        '<progress id="progress" max="100" value="0" hidden></progress>'
        '<p id="status" role="status" aria-live="polite"></p>'
        f'<button type="button" id="retry" hidden>{e["retry"]}</button>'
        f'<div id="done" hidden><p>{e["done"]}</p><p>{e["keep_link"]}</p>'
        '<p><a id="link" href="#"></a></p></div>'
        "</form></main>"
        + "".join(f'<script src="/static/{name}"></script>' for name in SCRIPTS[mode])
        + "</body></html>"
    )


def link_page(
    t: dict[str, str],
    lang: str,
    langs: dict[str, str],
    path: str,
    token: str | None,
    state: dict[str, object] | None,
    notice: str = "",
) -> str:
    """The private-link page: the upload's current choices and the two changes offered."""
    e = {k: escape(v) for k, v in t.items()}
    body = _head(lang, t["withdraw_title"]) + _switcher(lang, langs, path)
    body += f"<h1>{e['withdraw_title']}</h1>"
    if notice:
        body += f'<p id="notice" class="notice" role="status">{escape(notice)}</p>'
    if state is None or token is None:
        return body + f'<p id="unknown">{e["unknown_link"]}</p></main></body></html>'
    body += f"<p>{e['withdraw_intro']}</p>"
    buttons = []
    if state.get("consent") is not False:
        buttons.append(("withdraw", e["withdraw_button"]))
    if not state.get("anonymize"):
        buttons.append(("hide", e["hide_button"]))
    for action, label in buttons:
        body += (
            f'<form method="post" action="{escape(path)}?lang={escape(lang)}">'
            f'<input type="hidden" name="csrf" value="{escape(token)}">'
            f'<input type="hidden" name="action" value="{action}">'
            f'<button type="submit" id="{action}">{label}</button></form>'
        )
    return body + "</main></body></html>"
