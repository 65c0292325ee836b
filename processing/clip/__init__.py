"""One submission's path, as named stages with frozen hand-offs.

::

    upload ─ intake ─▶ Submission ─┬─ withdrawn? ─▶ consent.withdraw ─▶ Entry (excluded)
                                   ├─ reuse: record matches render key ─▶ Entry (cached)
                                   └─ stages:
          inspect ─▶ Inspected ─ plan ─▶ Plan ─ render ─▶ clips/<id>.mp4 + .flac
          ─ verify ─▶ Verified ─ measure ─▶ Measured ─ entry ─▶ Entry + clips/<id>.json

* :mod:`.intake`: uploads into submissions (identify, merge copies), the
  render key and the caption spec;
* :mod:`.files`: :class:`~.files.ClipFiles`, the one place a clip's paths are spelled;
* :mod:`.stages`: inspect → plan → render → verify → measure → entry;
* :mod:`.driver`: the cache in front of the stages, the error translation,
  and the batch.

This package imports nothing on its own, so :mod:`processing.state` can use
:mod:`.files` without a cycle; the entry points are re-exported by
:mod:`processing.pipeline`.
"""
