"""Requests to the local moto server are handed to its WSGI application in this process.

The local runtime's moto server (``ThreadedMotoServer``) runs in this process, so a boto3
call to it would leave through urllib3 and a socket, be parsed again by werkzeug's HTTP
server on another thread, and come back the same way: about a fifth of the runtime's CPU,
for nothing. Here a ``before-send`` handler (registered for every botocore session, as
moto's own ``mock_aws`` does) gives each request addressed to that server straight to the
same WSGI application (``DomainDispatcherApplication``), on the calling thread, and returns
its answer as the HTTP response. Everything else is unchanged: the same application, the
same backends, the same request signing, parsing, retries and event hooks on the client
side. Requests to any other address are sent normally.
"""

from __future__ import annotations

import io
import threading
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from werkzeug.test import EnvironBuilder, run_wsgi_app

_lock = threading.Lock()
#: "host:port" -> the WSGI application serving it
_apps: dict[str, Any] = {}


class _RawResponse(io.BytesIO):
    """What botocore reads of urllib3's response: ``read``/``close``, and ``stream`` for streaming bodies."""

    def stream(self, **_kwargs: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def _send(request: Any, **_kwargs: Any) -> AWSResponse | None:
    url = urlsplit(request.url)
    app = _apps.get(url.netloc)
    if app is None:
        return None  # not ours: botocore sends it
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = [
        (name, value.decode("utf-8") if isinstance(value, bytes) else value) for name, value in request.headers.items()
    ]
    environ = EnvironBuilder(
        path=url.path or "/",
        base_url=f"{url.scheme}://{url.netloc}",
        query_string=url.query,
        method=request.method,
        headers=headers,
        data=body or b"",
    ).get_environ()
    app_iter, status, response_headers = run_wsgi_app(app, environ, buffered=True)
    try:
        payload = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    return AWSResponse(request.url, int(status.split(" ", 1)[0]), dict(response_headers.items()), _RawResponse(payload))


def install(netloc: str, app: Any) -> None:
    """Serve requests for ``netloc`` ("host:port") with ``app`` from now on (new clients and old)."""
    with _lock:
        _apps[netloc] = app
        if ("before-send", _send) not in BUILTIN_HANDLERS:
            BUILTIN_HANDLERS.append(("before-send", _send))


def uninstall(netloc: str) -> None:
    with _lock:
        _apps.pop(netloc, None)
