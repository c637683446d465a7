"""The local HTTP front door: what API Gateway does in AWS, in ~80 lines.

Each HTTP request becomes an API Gateway REST proxy event for the payment
function's handler, and its proxy response becomes the HTTP response.
"""

from __future__ import annotations

import base64
import threading
import uuid
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from functions import registry
from payments.payin.attention import local_user
from payments_dev.local.lambdas import DISPATCHER

#: API Gateway's own hard limit on a request payload
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024

#: A Lambda execution environment handles one request at a time, and the Powertools
#: resolver relies on it (its per-request context is a module-level attribute). The
#: local front door runs the one environment it has the same way: one request at a time.
_ENVIRONMENT = threading.Lock()


#: who an operator route records as the caller locally (deployed: the caller's IAM identity); the
#: same stand-in as ``payments attention|mismatches resolve`` against the local runtime
LOCAL_CALLER = local_user()


def to_proxy_event(request: Request, body: bytes) -> dict[str, Any]:
    headers = dict(request.headers.items())
    query = dict(request.args.items()) or None
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": request.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": {k: request.headers.getlist(k) for k in headers},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "local",
            "httpMethod": request.method,
            "path": request.path,
            "resourcePath": request.path,
            # API Gateway's IAM authorisation names the caller; locally, the runtime's user stands in
            "identity": {"sourceIp": request.remote_addr or "127.0.0.1", "userArn": LOCAL_CALLER},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def function_for(path: str) -> str:
    """The function behind a route, as API Gateway integrates them (infra/)."""
    if path == "/v1/refunds" or path.startswith("/v1/refunds/"):
        return registry.REFUNDS.local_name
    if path.startswith(("/v1/sellers/", "/v1/payouts/")) or path == "/v1/payouts":
        return registry.PAYOUTS.local_name
    if path == "/v1/psp/notifications":
        return registry.NOTIFICATIONS.local_name
    if path.startswith("/v1/operator/"):
        return registry.OPERATOR.local_name
    return registry.PAYMENT.local_name


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    request = Request(environ)
    if (request.content_length or 0) > API_GATEWAY_MAX_BODY:
        # API Gateway's own answer (a gateway response mapped to a problem in infra/constructs/checkout_api.py)
        problem = (
            '{"type": "urn:payments:problem:payload-too-large", "title": "Payload too large", "status": 413, '
            '"detail": "The body exceeds API Gateway\'s 10 MiB limit."}'
        )
        response = Response(problem, status=413, content_type="application/problem+json")
        return response(environ, start_response)
    body = request.get_data(cache=False)
    function = function_for(request.path)
    handler = DISPATCHER.handler_for(function)
    from payments_dev.local.lambdas import LambdaContext

    try:
        with _ENVIRONMENT:
            result = handler(to_proxy_event(request, body), LambdaContext(function_name=function))
    except Exception:  # noqa: BLE001 - any function failure is answered like API Gateway does
        # what API Gateway answers when the function fails (DEFAULT_5XX, shaped as a problem): never an HTML page
        problem = (
            '{"type": "urn:payments:problem:internal-error", "title": "Internal error", "status": 502, '
            '"detail": "The function failed; please retry with the same Idempotency-Key."}'
        )
        return Response(problem, status=502, content_type="application/problem+json")(environ, start_response)
    payload = result.get("body") or ""
    data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
    response = Response(data, status=result["statusCode"])
    for key, value in (result.get("headers") or {}).items():
        response.headers[key] = value
    for key, values in (result.get("multiValueHeaders") or {}).items():
        response.headers.remove(key)
        for value in values:
            response.headers.add(key, value)
    return response(environ, start_response)


def serve_api(host: str, port: int) -> BaseWSGIServer:
    server = make_server(host, port, wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, name="payments-api", daemon=True).start()
    return server
