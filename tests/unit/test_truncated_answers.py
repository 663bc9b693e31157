"""A 200 answer cut short must be an error, never an empty result (found by the chaos soak).

botocore parses an unreadable JSON body as ``{'message': ...}``: a GetRecords would then look like the
end of a shard and a Scan like the end of a segment. projector's clients turn it into a retryable error.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from projector.clients import TruncatedResponseError, dynamodb_client, streams_client
from projector.config import Settings
from projector.retry.transient import is_transient


class _CutShort(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b'{"Records": [{"eventID": "1", "dynamodb": {"Keys"')
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cut_short_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutShort)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_cut_short_stream_answer_is_a_retryable_error(cut_short_endpoint: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(dynamodb_endpoint=cut_short_endpoint)
    with pytest.raises(TruncatedResponseError) as raised:
        streams_client(settings).get_records(ShardIterator="x" * 10)
    assert is_transient(raised.value)
    with pytest.raises(TruncatedResponseError):
        dynamodb_client(settings).scan(TableName="orders", Segment=0, TotalSegments=1)
