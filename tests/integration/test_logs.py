"""Logs carry no item values, and in Lambda they arrive as JSON with the correlation keys.

A batch captured from the moto stream is salted with poison holding recognisable values (a malformed
number, a date OpenSearch refuses, a group key the aggregate projection rejects); every log line is
searched for them. Once in-process at DEBUG (every logger of the engine), once through the Lambda
Runtime Interface Emulator running awslambdaric as Lambda does, with the template's logging variables.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import socket
from pathlib import Path
from typing import Any

import pytest

from devservers.workload import make_order
from projector.handler import lambda_handler, runtime
from tests.support.handler import LambdaContext
from tests.support.orders_table import put_order
from tests.support.streams import capture_records, event

pytestmark = pytest.mark.integration

SECRETS = ("4111-1111-1111-1111", "SECRETDATE-7777", "secret-customer-5555")


def poisoned_batch(dynamodb: Any, dynamodbstreams: Any, table: str) -> list[dict[str, Any]]:
    """Six good inserts, then three copies carrying the secrets where a value should be."""
    rng = random.Random(7)
    for n in range(6):
        put_order(dynamodb, table, make_order(rng, f"O{n:05d}"))
    records = capture_records(dynamodb, dynamodbstreams, table)
    assert len(records) == 6
    bad_number, bad_date, bad_group = (copy.deepcopy(records[n]) for n in (0, 1, 2))
    bad_number["dynamodb"]["NewImage"]["total"] = {"N": SECRETS[0]}
    bad_date["dynamodb"]["NewImage"]["created_at"] = {"S": SECRETS[1]}
    bad_date["dynamodb"]["NewImage"]["version"] = {"N": "99"}
    bad_group["dynamodb"]["NewImage"]["customer_id"] = {"N": "5555"}  # not a string group key
    bad_group["dynamodb"]["NewImage"]["note"] = {"S": SECRETS[2]}
    bad_group["dynamodb"]["NewImage"]["version"] = {"N": "98"}
    for offset, record in enumerate((bad_number, bad_date, bad_group)):
        number = int(records[-1]["dynamodb"]["SequenceNumber"]) + 1 + offset
        record["dynamodb"]["SequenceNumber"] = str(number).zfill(
            len(records[-1]["dynamodb"]["SequenceNumber"])
        )
    return [*records, bad_number, bad_date, bad_group]


def test_no_item_value_reaches_any_log_line(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, caplog: pytest.LogCaptureFixture
) -> None:
    batch = poisoned_batch(dynamodb, dynamodbstreams, pipeline.source_table)
    with caplog.at_level(logging.DEBUG):
        answer = lambda_handler(event(batch), LambdaContext())
    assert answer == {"batchItemFailures": []}
    letters = list(runtime().dead_letters.list())
    assert len(letters) >= 2, [letter.error for letter in letters]
    # The dead letters keep the whole record: the values are there, for the operator to inspect.
    kept = json.dumps([letter.model_dump(mode="json") for letter in letters])
    assert SECRETS[0] in kept and SECRETS[1] in kept
    # Every line of the engine at any level, and every other library's line at INFO and above
    # (botocore's DEBUG lines quote request bodies; Lambda's root logger is at INFO or above).
    lines = [
        f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if record.name.startswith("projector") or record.levelno >= logging.INFO
    ]
    assert any("dead-lettered" in line for line in lines)
    for secret in (*SECRETS, "4111", "SECRETDATE", "5555"):
        assert not [line for line in lines if secret in line], secret


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_lambda_runtime_writes_json_info_lines_with_correlation_keys(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any
) -> None:
    try:
        from devservers.gotools import ensure_rie
        from devservers.rie import running_rie

        ensure_rie()
    except Exception as error:  # pragma: no cover - no Go toolchain
        pytest.skip(f"the Lambda Runtime Interface Emulator is not available: {error}")
    batch = poisoned_batch(dynamodb, dynamodbstreams, pipeline.source_table)
    env = {
        # What the template sets: JSON log format, INFO, the stack name as the Powertools service.
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_SERVICE_NAME": "projector-stack",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "60",
    }
    with running_rie(env=env, port=_free_port(), runtime_api_port=_free_port()) as rie:
        answer = rie.invoke(event(batch))
        log = Path(rie.log_path()).read_text(errors="replace")
    assert answer == {"batchItemFailures": []}, log[-2000:]
    lines = [line for line in log.splitlines() if line.strip()]
    for secret in (*SECRETS, "4111", "SECRETDATE", "5555"):
        assert not [line for line in lines if secret in line], secret
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    info = [entry for entry in entries if entry.get("level") == "INFO"]
    assert info, log[-2000:]
    engine_info = [
        entry for entry in info if entry.get("service") == "projector-stack" and "applied" in entry["message"]
    ]
    assert len(engine_info) >= 2, entries  # the sinks' lines and the batch summary
    arn = batch[0]["eventSourceARN"]
    for entry in engine_info:
        assert entry["event_source_arn"] == arn
        assert entry["first_sequence"] == batch[0]["dynamodb"]["SequenceNumber"]
        assert entry["last_sequence"] == batch[-1]["dynamodb"]["SequenceNumber"]
        assert entry.get("function_request_id")
    assert any(entry.get("projection") == "orders" for entry in engine_info), engine_info
    # opensearch-py's per-request INFO lines are left out at INFO (its failures are WARNINGs).
    assert not [entry for entry in info if entry.get("logger") == "opensearch"]
    warnings = [
        entry for entry in entries if entry.get("level") == "WARNING" and "dead-lettered" in entry["message"]
    ]
    assert warnings and all(entry["event_source_arn"] == arn for entry in warnings)
