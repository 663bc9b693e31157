"""X-Ray in Lambda: the handler, each projection's sink, every DynamoDB call and every OpenSearch
request are subsegments. The handler runs in a subprocess with Lambda's environment (task root, trace
header) and the X-Ray daemon address pointed at a UDP socket of this test, which reads what is sent."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devservers.workload import make_order
from projector.handler import reset_runtime, runtime
from tests.support.orders_table import put_order
from tests.support.streams import capture_records, event

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TRACE_ID = "1-67891233-abcdef012345678912345678"

RUN = textwrap.dedent("""
    import json, sys
    from projector.handler import lambda_handler

    class Context:
        aws_request_id = "req-1"
        function_name = "projector-stack-projector"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:projector-stack-projector"
        def get_remaining_time_in_millis(self):
            return 60000

    print(json.dumps(lambda_handler(json.load(open(sys.argv[1])), Context())))
""")


def _segments(sock: socket.socket) -> list[dict[str, Any]]:
    sock.settimeout(1.0)
    found: list[dict[str, Any]] = []
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return found
        _, _, body = data.decode().partition("\n")
        found.append(json.loads(body))


def _names(entity: dict[str, Any]) -> list[str]:
    return [entity.get("name", ""), *(name for sub in entity.get("subsegments", []) for name in _names(sub))]


def test_the_handler_is_traced_with_subsegments(
    settings_env: Any, dynamodb: Any, dynamodbstreams: Any, tmp_path: Path
) -> None:
    from projector.setup import setup

    reset_runtime()
    setup(runtime(), with_source_table=True)
    reset_runtime()
    rng = random.Random(5)
    for n in range(5):
        put_order(dynamodb, settings_env.source_table, make_order(rng, f"O{n:05d}"))
    batch = capture_records(dynamodb, dynamodbstreams, settings_env.source_table)
    (tmp_path / "event.json").write_text(json.dumps(event(batch)))
    (tmp_path / "run.py").write_text(RUN)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        env = {
            **os.environ,
            "LAMBDA_TASK_ROOT": str(tmp_path),
            "AWS_LAMBDA_FUNCTION_NAME": "projector-stack-projector",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",  # never called: only marks the process as Lambda
            "_X_AMZN_TRACE_ID": f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "POWERTOOLS_SERVICE_NAME": "projector-stack",
            "PYTHONPATH": str(REPO),
        }
        env.pop("POWERTOOLS_TRACE_DISABLED", None)
        result = subprocess.run(
            [sys.executable, str(tmp_path / "run.py"), str(tmp_path / "event.json")],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
        segments = _segments(daemon)
    assert segments, "nothing reached the X-Ray daemon address"
    assert {segment["trace_id"] for segment in segments} == {TRACE_ID}
    names = [name for segment in segments for name in _names(segment)]
    assert "## _handle" in names, names
    for projection in ("orders", "customer_totals", "daily_sales"):
        assert f"projection {projection}" in names, names
    assert "dynamodb" in names, names  # the transactions and the state reads (botocore)
    assert any(
        name.startswith("opensearch POST /" + settings_env.index_prefix) and name.endswith("/_bulk")
        for name in names
    ), names
    sent = json.dumps(segments)
    for order_id in (record["dynamodb"]["Keys"]["order_id"]["S"] for record in batch):
        assert order_id not in sent  # no item data in traces (bodies are never recorded)
