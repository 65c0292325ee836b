"""The contributor upload page: consent, name and anonymity recorded with the video.

* :mod:`.app`: the Starlette application (``reel upload serve``).
* :mod:`.tus`: resumable chunked uploads (tus, tuspyserver) behind the checks.
* :mod:`.store`: the folder target, atomic video + sidecar, private links.
* :mod:`.s3store`, :mod:`.s3routes`: the ``s3://`` target (presigned S3 multipart).
* :mod:`.guard`: CSRF, rate limits, security headers.
* :mod:`.sniff`: the container from the file's first bytes.
* :mod:`.page`: the HTML; ``static/`` its script, style, tus-js-client and Uppy.

No Prefect imports: the page runs on its own, next to the pipeline.
"""
