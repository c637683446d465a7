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

moto's dispatcher finds the service's application again for every request (it parses the
signature's credential scope, then matches the host against every service's URL patterns, under
one process-wide lock): about a tenth of each call's CPU. A signed request's service and region
are in its credential scope, and they always lead to the same application, so the application is
remembered per address and scope; an unsigned request, or one for moto's own API, goes through the
dispatcher as before (``PAYMENTS_LOCAL_DISPATCH_CACHE=off``: every request does, to compare).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from werkzeug.test import EnvironBuilder, run_wsgi_app

_lock = threading.Lock()
#: moto's DynamoDB backend is not safe across threads: an UpdateItem changes an item's attributes in place while
#: a BatchGetItem on another thread sums their sizes ("dictionary changed size during iteration", a 500 to the
#: caller). DynamoDB itself is linearizable per item, so the local runtime serialises its DynamoDB requests.
_dynamodb = threading.RLock()
#: "host:port" -> the WSGI application serving it
_apps: dict[str, Any] = {}
#: ("host:port", "<region>/<service>") -> the dispatcher's application for that service
_services: dict[tuple[str, str], Any] = {}


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
    with _dynamodb if (_scope(environ) or "").endswith(("/dynamodb", "/dynamodbstreams")) else _unlocked:
        app_iter, status, response_headers = run_wsgi_app(
            _service_app(url.netloc, app, environ), environ, buffered=True
        )
        try:
            payload = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
    return AWSResponse(request.url, int(status.split(" ", 1)[0]), dict(response_headers.items()), _RawResponse(payload))


_unlocked = contextlib.nullcontext()


def _scope(environ: dict[str, Any]) -> str | None:
    """``<region>/<service>`` of a SigV4-signed request (``Credential=AKID/date/region/service/aws4_request``),
    or None: unsigned, or addressed to moto's own API, which the dispatcher routes by path."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/latest/")):
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if not auth.startswith("AWS4-HMAC-SHA256 Credential="):
        return None
    parts = auth.split(",", 1)[0].split("=", 1)[1].split("/")
    if len(parts) != 5:
        return None
    # DynamoDB Streams signs as "dynamodb" too: moto tells the two apart by the target's prefix
    streams = parts[3] == "dynamodb" and environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDBStreams")
    return f"{parts[2]}/{parts[3]}" + ("streams" if streams else "")


def _service_app(netloc: str, app: Any, environ: dict[str, Any]) -> Any:
    """The application serving this request: remembered per address and credential scope."""
    find = getattr(app, "get_application", None)
    scope = _scope(environ)
    if find is None or scope is None or os.environ.get("PAYMENTS_LOCAL_DISPATCH_CACHE", "on") == "off":
        return app
    key = (netloc, scope)
    found = _services.get(key)
    if found is None:
        found = _services[key] = find(environ)
    return found


def install(netloc: str, app: Any) -> None:
    """Serve requests for ``netloc`` ("host:port") with ``app`` from now on (new clients and old)."""
    with _lock:
        _apps[netloc] = app
        if ("before-send", _send) not in BUILTIN_HANDLERS:
            BUILTIN_HANDLERS.append(("before-send", _send))


def uninstall(netloc: str) -> None:
    with _lock:
        _apps.pop(netloc, None)
        for key in [key for key in _services if key[0] == netloc]:
            _services.pop(key, None)
