"""Order events through the real pipeline: folds, gaps, duplicates, bad input, unfillable gaps."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from devservers.event_workload import next_events
from projector.retry import Deadline
from tests.support.events import ORDER_EVENTS, assert_exact, events_runtime, store
from tests.support.streams import capture_records

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(settings_env: Any, monkeypatch: pytest.MonkeyPatch, opensearch: Any, dynamodb: Any) -> Any:
    monkeypatch.setenv("PROJECTOR_PROJECTIONS", ORDER_EVENTS)
    return events_runtime()


def append_orders(runtime: Any, rng: random.Random, streams: int, appends: int) -> None:
    events = store(runtime)
    versions = dict.fromkeys(range(streams), 0)
    for _ in range(appends):
        number = rng.randrange(streams)
        batch = next_events(rng, versions[number], f"{number:04d}", rng.randint(1, 3))
        versions[number] = events.append(f"order-{number:04d}", batch, versions[number])


def process(runtime: Any, records: list[dict[str, Any]]) -> Any:
    return runtime.stream_applier.apply(records, Deadline.after(60))


def letters(settings_env: Any) -> list[dict[str, Any]]:
    folder = settings_env.dead_letters_dir
    return (
        [json.loads(path.read_text()) for path in sorted(folder.rglob("*.json"))] if folder.exists() else []
    )


def test_in_order_batches_fold_exactly_with_no_gap_reads(
    runtime: Any, opensearch: Any, dynamodbstreams: Any
) -> None:
    append_orders(runtime, random.Random(1), streams=6, appends=30)
    records = capture_records(runtime.dynamodb, dynamodbstreams, runtime.settings.source_table)
    gap_reads = 0
    for start in range(0, len(records), 7):
        outcome = process(runtime, records[start : start + 7])
        assert outcome.first_failed is None, outcome.failures
        gap_reads += outcome.gap_reads
    assert gap_reads == 0
    assert_exact(runtime, opensearch)
    again = process(runtime, records)  # a replay of everything changes nothing
    assert again.stale == 2 * len(records) and again.first_failed is None  # both projections: stale
    assert_exact(runtime, opensearch)


def test_missing_shuffled_and_duplicated_records_are_filled_from_the_table(
    runtime: Any, opensearch: Any, dynamodbstreams: Any
) -> None:
    rng = random.Random(2)
    append_orders(runtime, rng, streams=5, appends=25)
    records = capture_records(runtime.dynamodb, dynamodbstreams, runtime.settings.source_table)
    kept = [record for record in records if rng.random() > 0.3]
    delivered = kept + rng.sample(kept, len(kept) // 3)
    rng.shuffle(delivered)
    gap_reads = 0
    for start in range(0, len(delivered), 9):
        outcome = process(runtime, delivered[start : start + 9])
        assert outcome.first_failed is None, outcome.failures
        gap_reads += outcome.gap_reads
    assert gap_reads > 0
    # Streams whose last events were among the missing records stay behind until those arrive.
    process(runtime, records)
    assert_exact(runtime, opensearch)


def test_bad_input_is_dead_lettered_whole_naming_the_field_and_the_rest_applies(
    runtime: Any, opensearch: Any, dynamodbstreams: Any, settings_env: Any
) -> None:
    events = store(runtime)
    rng = random.Random(3)
    events.append("order-0001", next_events(rng, 0, "0001", 3), 0)
    events.append("order-0002", next_events(rng, 0, "0002", 2), 0)
    records = capture_records(runtime.dynamodb, dynamodbstreams, runtime.settings.source_table)
    template = next(r for r in records if r["dynamodb"]["Keys"]["stream_id"]["S"] == "order-0002")

    def bad(change: Any) -> dict[str, Any]:
        record = copy.deepcopy(template)
        change(record["dynamodb"]["NewImage"])
        return record

    no_version = bad(lambda image: image.pop("version"))
    text_version = bad(lambda image: image.update(version={"S": "two"}))
    bad_payload = bad(
        lambda image: (
            image["data"]["M"].update(placed_at={"S": "yesterday"}),
            image.update(version={"N": "3"}),
        )
    )
    bad_stream = bad(lambda image: image.update(stream_id={"S": "order0002"}))
    batch = [no_version, *records, text_version, bad_payload, bad_stream]
    outcome = process(runtime, batch)
    assert outcome.first_failed is None
    found = [letter for letter in letters(settings_env) if letter["projection"] == "order_views"]
    assert len(found) == 4
    reasons = sorted(letter["error"] for letter in found)
    assert any(reason.startswith("version: missing") for reason in reasons)
    assert any(reason.startswith("version: must be a whole number") for reason in reasons)
    assert any("data.placed_at" in reason for reason in reasons)
    assert any(reason.startswith("stream_id: has no category prefix") for reason in reasons)
    assert all(letter["record"]["dynamodb"]["NewImage"] for letter in found)  # the whole record
    assert all("yesterday" not in letter["error"] for letter in found)
    assert_exact(runtime, opensearch)


def test_a_gap_missing_from_the_table_stops_only_its_stream(
    runtime: Any, opensearch: Any, dynamodbstreams: Any, caplog: pytest.LogCaptureFixture
) -> None:
    events = store(runtime)
    rng = random.Random(4)
    events.append("order-0001", next_events(rng, 0, "0001", 5), 0)
    events.append("order-0002", next_events(rng, 0, "0002", 3), 0)
    records = capture_records(runtime.dynamodb, dynamodbstreams, runtime.settings.source_table)
    first_two = [r for r in records if r["dynamodb"]["Keys"]["stream_id"]["S"] == "order-0001"][:2]
    assert process(runtime, first_two).first_failed is None
    # Version 3 vanishes from the table (and its record is never delivered): the gap cannot be filled.
    runtime.dynamodb.delete_item(
        TableName=runtime.settings.source_table,
        Key={"stream_id": {"S": "order-0001"}, "version": {"N": "3"}},
    )
    rest = [
        r
        for r in records
        if (r not in first_two and r["dynamodb"]["NewImage"]["version"]["N"] != "3")
        or r["dynamodb"]["Keys"]["stream_id"]["S"] == "order-0002"
    ]
    with caplog.at_level("WARNING", logger="projector.events"):
        outcome = process(runtime, rest)
    assert outcome.first_failed is not None
    first_unapplied = rest[outcome.first_failed]
    assert first_unapplied["dynamodb"]["Keys"] == {"stream_id": {"S": "order-0001"}, "version": {"N": "4"}}
    assert outcome.response() == {
        "batchItemFailures": [{"itemIdentifier": first_unapplied["dynamodb"]["SequenceNumber"]}]
    }
    lines = [r.getMessage() for r in caplog.records if "order-0001" in r.getMessage()]
    assert len(lines) == 1 and "stopped at version 2" in lines[0]
    view = runtime.registry.document("order_views")
    alias = runtime.settings.index_prefix + "order_views"
    assert opensearch.get(index=alias, id="0001")["_source"]["version"] == 2
    assert opensearch.get(index=alias, id="0002")["_source"]["version"] == 3  # the other stream went on
    assert view.doc_id("order-0002") == "0002"


def test_a_stream_id_over_the_document_id_limit_lands_with_the_rest_of_its_batch(
    runtime: Any, opensearch: Any, dynamodbstreams: Any
) -> None:
    """A 600-byte order id (300 two-byte characters) would be an ``_id`` OpenSearch refuses for the
    whole bulk request: it is stored under its digest and every other stream of the batch lands."""
    rng = random.Random(5)
    events = store(runtime)
    long_id = "é" * 300
    for order_id in (long_id, "0001", "0002"):
        events.append(f"order-{order_id}", next_events(rng, 0, order_id, 3), 0)
    records = capture_records(runtime.dynamodb, dynamodbstreams, runtime.settings.source_table)
    outcome = process(runtime, records)
    assert outcome.first_failed is None, outcome.failures
    assert_exact(runtime, opensearch)
    assert process(runtime, records).first_failed is None  # a replay stays exact
    assert_exact(runtime, opensearch)
