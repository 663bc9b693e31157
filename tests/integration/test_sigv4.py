"""With PROJECTOR_OPENSEARCH_AUTH=sigv4 the OpenSearch client signs every request as AWS expects.

A small HTTP server on 127.0.0.1 stands in for Amazon OpenSearch Service: it records each request as
it arrives on the wire (method, path, query, headers, body) and answers like OpenSearch. Each recorded
request is then verified by recomputing its SigV4 signature with botocore's SigV4Auth over exactly
what was received, with the signed headers the client declared, the client's timestamp and the same
dummy credentials. Nothing here talks to AWS.

What this proves: the bytes on the wire are the bytes that were signed (the body is gzip-compressed
*before* signing, no header or URL is changed after signing), the credential scope names the key, the
date of x-amz-date, the region and the service (`es`, or `aoss` when PROJECTOR_OPENSEARCH_SERVICE says
so), host and x-amz-date are signed, and session credentials add a signed x-amz-security-token. The
recomputation uses botocore's canonicalisation, which is also what opensearch-py's signer uses, so it
cannot catch a difference between botocore and the service in canonicalising unusual query strings
(a space sent as `+` is the known one); projector sends its queries in request bodies.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

pytestmark = pytest.mark.integration

ACCESS_KEY = "AKIAPROJECTORTEST01"
SECRET_KEY = "projector/test/secret+key/not-a-real-one"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEPROJECTOR//dummy/session/token=="
REGION = "eu-west-1"
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


class Recorder(BaseHTTPRequestHandler):
    """Records requests and answers as an OpenSearch 2.x domain would (enough for the client)."""

    server: RecordingServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(
            {
                "method": self.command,
                "target": self.path,
                "headers": [(k, v) for k, v in self.headers.items()],
                "body": body,
            }
        )
        path = urlsplit(self.path).path
        if path == "/":
            answer: dict[str, Any] = {
                "name": "sigv4-recorder",
                "cluster_name": "123456789012:projector",
                "version": {"distribution": "opensearch", "number": "2.19.0"},
                "tagline": "The OpenSearch Project: https://opensearch.org/",
            }
        elif path.endswith("/_bulk"):
            answer = {"took": 1, "errors": False, "items": []}
        elif path.endswith("/_search"):
            answer = {
                "took": 1,
                "timed_out": False,
                "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []},
            }
        else:
            answer = {"acknowledged": True}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

    def log_message(self, *args: Any) -> None:
        pass


class RecordingServer(ThreadingHTTPServer):
    requests: list[dict[str, Any]]


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer(("127.0.0.1", 0), Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _settings(monkeypatch: pytest.MonkeyPatch, port: int, service: str, token: str | None) -> Any:
    from projector.config.settings import Settings

    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_AUTH", "sigv4")
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_SERVICE", service)
    from projector.config.settings import load_settings

    settings = load_settings()
    assert isinstance(settings, Settings)
    assert (settings.opensearch_auth, settings.opensearch_url, settings.region) == (
        "sigv4",
        f"http://127.0.0.1:{port}",
        REGION,
    )
    return settings


def _exercise(client: Any) -> None:
    """A GET, a HEAD, a PUT with a JSON body, a query string with escaped characters, an NDJSON _bulk POST."""
    client.info()
    client.indices.exists(index="sigv4-orders-v1")
    client.indices.create(
        index="sigv4-orders-v1",
        body={"settings": {"number_of_shards": 1}, "mappings": {"properties": {"note": {"type": "text"}}}},
    )
    client.search(
        index="sigv4-orders",
        body={"query": {"match": {"note": "gift wrap, größe ÄÖ"}}},
        params={"size": 5, "sort": "created_at:desc", "_source_includes": "order_id,items.*"},
    )
    client.bulk(
        body=[
            {
                "index": {
                    "_index": "sigv4-orders-v1",
                    "_id": "ord 1/é",
                    "version": 3,
                    "version_type": "external",
                }
            },
            {"note": "Leave with the neighbour", "total": 12.5},
        ],
        refresh="false",
    )


def _verify(recorded: dict[str, Any], port: int, service: str, token: str | None) -> dict[str, str]:
    headers = {name.lower(): value for name, value in recorded["headers"]}
    match = AUTHORIZATION.match(headers.get("authorization", ""))
    assert match, headers.get("authorization")
    amz_date = headers["x-amz-date"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", amz_date)
    assert match["key"] == ACCESS_KEY
    assert match["date"] == amz_date[:8]
    assert match["region"] == REGION
    assert match["service"] == service
    signed = match["signed"].split(";")
    assert signed == sorted(signed)
    assert {"host", "x-amz-date"} <= set(signed)
    assert headers["host"] == f"127.0.0.1:{port}"
    if token:
        assert headers["x-amz-security-token"] == token
        assert "x-amz-security-token" in signed
    else:
        assert "x-amz-security-token" not in headers
    # The declared payload hash is the hash of the bytes that arrived (gzip-compressed when compressed).
    if "x-amz-content-sha256" in headers:
        assert headers["x-amz-content-sha256"] == hashlib.sha256(recorded["body"]).hexdigest()

    # Recompute the signature over what was received, with the client's timestamp and signed headers.
    request = AWSRequest(
        method=recorded["method"],
        url=f"http://127.0.0.1:{port}{recorded['target']}",
        data=recorded["body"],
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), service, REGION)
    assert auth.signed_headers(auth.headers_to_sign(request)) == match["signed"]
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    assert match["signature"] == expected, f"signature mismatch; canonical request:\n{canonical}"
    return headers


@pytest.mark.parametrize(
    ("service", "token"),
    [("es", None), ("es", SESSION_TOKEN), ("aoss", SESSION_TOKEN)],
    ids=["es-long-term-keys", "es-session-credentials", "aoss-session-credentials"],
)
def test_requests_carry_a_valid_sigv4_signature(
    recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch, service: str, token: str | None
) -> None:
    from projector.sinks.opensearch.client import build_client, opensearch_client

    port = recorder.server_address[1]
    # Compression on (PROJECTOR_OPENSEARCH_COMPRESS): the harder case, the signed bytes are the gzip.
    settings = _settings(monkeypatch, port, service, token).model_copy(update={"opensearch_compress": True})
    client = opensearch_client(settings)
    assert client is opensearch_client(settings)  # made once per process
    _exercise(client)

    methods = [r["method"] for r in recorder.requests]
    assert methods == ["GET", "HEAD", "PUT", "POST", "POST"], methods
    for recorded in recorder.requests:
        headers = _verify(recorded, port, service, token)
        if recorded["body"]:
            assert headers.get("content-encoding") == "gzip"  # http_compress: the signed bytes are the gzip
            gzip.decompress(recorded["body"])
    bulk = recorder.requests[-1]
    lines = gzip.decompress(bulk["body"]).decode().splitlines()
    assert json.loads(lines[0])["index"]["version_type"] == "external"
    assert bulk["target"] == "/_bulk?refresh=false"

    # A fresh client from the same settings signs the same way (no state hidden in the cached one).
    build_client(settings).info()
    _verify(recorder.requests[-1], port, service, token)


def test_a_tampered_request_fails_verification(
    recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verification above is not vacuous: change one received byte and the signature no longer matches."""
    from projector.sinks.opensearch.client import build_client

    port = recorder.server_address[1]
    settings = _settings(monkeypatch, port, "es", SESSION_TOKEN)
    build_client(settings).indices.create(index="sigv4-tamper", body={"settings": {"number_of_shards": 1}})
    recorded = recorder.requests[-1]
    _verify(recorded, port, "es", SESSION_TOKEN)
    for tampered in (
        {**recorded, "target": recorded["target"].replace("sigv4-tamper", "sigv4-tamperX")},
        {**recorded, "method": "POST"},
        {
            **recorded,
            "headers": [
                (k, v if k.lower() != "x-amz-date" else "20200101T000000Z") for k, v in recorded["headers"]
            ],
        },
    ):
        with pytest.raises(AssertionError):
            _verify(tampered, port, "es", SESSION_TOKEN)
    with pytest.raises(AssertionError):  # a different secret signs differently
        headers = {name.lower(): value for name, value in recorded["headers"]}
        match = AUTHORIZATION.match(headers["authorization"])
        assert match
        request = AWSRequest(
            method=recorded["method"],
            url=f"http://127.0.0.1:{port}{recorded['target']}",
            data=recorded["body"],
            headers={n: headers[n] for n in match["signed"].split(";")},
        )
        request.context["timestamp"] = headers["x-amz-date"]
        auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY + "x", SESSION_TOKEN), "es", REGION)
        assert match["signature"] == auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
