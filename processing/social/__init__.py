"""Social renditions: 9:16 and 1:1 cuts reframed on the face, their layouts, post text and QR codes.

Stand-alone parts of issue 17, ready for the per-clip encode to call:
:mod:`.reframe` plans where the window sits, :mod:`.graph` turns the plan into
ffmpeg-python filters, :mod:`.layout` gives the platforms' safe zones,
:mod:`.post_text` writes ``post.txt`` and :mod:`.qr` draws a link as a QR code.
"""
