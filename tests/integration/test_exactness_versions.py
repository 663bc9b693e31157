"""Exactness of the version rules on the real servers: late INSERTs against scanned state (issue 14).

Each test drives a delivery pattern on purpose through the real handler and a real backfill (OpenSearch
and the moto server), then compares every projection with the source table.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from devservers.workload import make_order
from projections.orders import customer_totals, daily_sales, orders
from projector.backfill import Backfill, BackfillOptions, BackfillReport
from projector.handler import runtime
from projector.sinks.aggregates import read_aggregate
from tests.support.handler import handle
from tests.support.orders_table import expected_aggregates, put_order, update_order
from tests.support.streams import capture_records
from tests.support.truth import same_document, scan_items, visible_documents

pytestmark = pytest.mark.integration


def backfill(**options: Any) -> BackfillReport:
    job = Backfill(runtime(), BackfillOptions(segments=2, page_size=50, **options))
    source = job.source()
    return job.run(source, job.prepare(source))


def assert_projections_equal_source(dynamodb: Any, opensearch: Any, env: Any) -> None:
    items = scan_items(dynamodb, env.source_table)
    documents = visible_documents(opensearch, env.index_prefix + "orders")
    assert set(documents) == set(items)
    wrong = [key for key, item in items.items() if not same_document(item, documents[key])]
    assert wrong == [], f"documents differ from the table: {wrong}"
    engine = runtime()
    for projection in (customer_totals, daily_sales):
        for group, measures in expected_aggregates(items, projection).items():
            row = read_aggregate(engine.dynamodb, engine.settings, projection, group)
            assert Decimal(row["revenue"]) == measures["revenue"], (projection.name, group)
            assert row["order_count"] == measures["order_count"], (projection.name, group)


def two_versions(dynamodb: Any, table: str, count: int) -> list[dict[str, Any]]:
    """``count`` orders written at version 1 (PENDING), then moved to version 2 (PAID, another customer)."""
    rng = random.Random(14)
    orders = [make_order(rng, f"L{n:04d}") for n in range(count)]
    for order in orders:
        order["status"] = "PENDING"
        put_order(dynamodb, table, order)
    return [
        update_order(dynamodb, table, order, status="PAID", customer_id=f"X{n:03d}")
        for n, order in enumerate(orders)
    ]


def by_kind(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [record for record in records if record["eventName"] == kind]


def test_a_late_insert_never_rolls_back_a_backfilled_state(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    """Case 6: backfill writes v2, the stream's MODIFY v2 is stale, then the INSERT v1 arrives late."""
    two_versions(dynamodb, pipeline.source_table, 6)
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    inserts, modifies = by_kind(records, "INSERT"), by_kind(records, "MODIFY")
    assert len(inserts) == len(modifies) == 6

    assert backfill().items == 6
    assert handle(modifies) == {"batchItemFailures": []}
    assert_projections_equal_source(dynamodb, opensearch, pipeline)
    assert handle(inserts) == {"batchItemFailures": []}  # the late redrive of every INSERT
    assert_projections_equal_source(dynamodb, opensearch, pipeline)
    assert handle(records) == {"batchItemFailures": []}  # and a resend of the whole stream
    assert_projections_equal_source(dynamodb, opensearch, pipeline)


def test_a_redrive_from_before_a_rebuild_never_rolls_back_the_rebuilt_state(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    """The new build holds only scanned state; an old INSERT resent after the swap must stay stale."""
    two_versions(dynamodb, pipeline.source_table, 6)
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    assert handle(records) == {"batchItemFailures": []}

    assert backfill(rebuild=True).items == 6
    assert handle(by_kind(records, "INSERT")) == {"batchItemFailures": []}
    assert_projections_equal_source(dynamodb, opensearch, pipeline)


# --- case 7: a projection keyed by another attribute than the table ---------------------------------


def wrong_key_registry() -> Any:
    from projector.projection import Registry

    by_customer = customer_totals.model_copy(
        update={"name": "by_customer", "key_attributes": ("customer_id",)}
    )
    return Registry(
        documents=(orders,), aggregates=(by_customer, daily_sales), by_name={"by_customer": by_customer}
    )


def test_setup_refuses_a_projection_keyed_by_another_attribute(
    settings_env: Any, dynamodb: Any, opensearch: Any
) -> None:
    from projector.config.exceptions import ConfigurationError
    from projector.runtime import Runtime
    from projector.setup import setup

    setup(Runtime(), with_source_table=True)  # the orders table, keyed by order_id
    wrong = Runtime(registry=wrong_key_registry())
    with pytest.raises(ConfigurationError) as caught:
        setup(wrong)
    message = str(caught.value)
    assert "projection 'by_customer' has key_attributes ('customer_id',)" in message
    assert f"table {settings_env.source_table!r} is keyed by ('order_id',)" in message
    assert not dynamodb.query(
        TableName=settings_env.aggregates_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "by_customer#meta"}},
    )["Items"]


def test_a_wrong_key_fails_every_batch_clearly_and_loses_nothing(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    """Each batch fails with one clear error (never a bare KeyError) until the fix is deployed; then the
    same records (Lambda resends them) are applied and every projection equals the table."""
    from projector import handler
    from projector.config.exceptions import ConfigurationError
    from projector.runtime import Runtime

    two_versions(dynamodb, pipeline.source_table, 4)
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    handler.reset_runtime()
    handler._runtime = Runtime(registry=wrong_key_registry())  # the misconfigured deployment
    for _ in range(2):  # Lambda's retries of the same batch
        with pytest.raises(ConfigurationError, match="'by_customer' has key_attributes"):
            handle(records)
    assert visible_documents(opensearch, pipeline.index_prefix + "orders") == {}  # nothing applied

    handler.reset_runtime()  # the fixed deployment: a new cold start
    assert handle(records) == {"batchItemFailures": []}
    assert_projections_equal_source(dynamodb, opensearch, pipeline)


# --- case 8: a restored source table (versions going backwards) -----------------------------------------


def test_verify_names_a_restored_table_and_a_rebuild_cures_it(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    from click.testing import CliRunner

    from projector.cli.main import cli
    from projector.verify import Verifier, VerifyOptions

    table = pipeline.source_table
    rng = random.Random(8)
    originals = [make_order(rng, f"R{n:03d}") for n in range(5)]
    for order in originals:
        order["status"] = "PAID"
        put_order(dynamodb, table, order)
    newest = [update_order(dynamodb, table, order, status="SHIPPED") for order in originals]
    newest = [update_order(dynamodb, table, order, customer_id="C-MOVED") for order in newest]
    before_restore = capture_records(dynamodb, dynamodbstreams, table)
    assert handle(before_restore) == {"batchItemFailures": []}

    # The restore: half of the items are back at version 1 (a new table's stream never carries this).
    for order in originals[:3]:
        put_order(dynamodb, table, order)
    # Writers go on from the restored versions; those updates are stale against the stored versions.
    after = [update_order(dynamodb, table, order, status="SHIPPED") for order in originals[:2]]
    live = capture_records(dynamodb, dynamodbstreams, table)[len(before_restore) :]
    assert handle([r for r in live if r["dynamodb"]["NewImage"]["version"]["N"] == "2"]) == {
        "batchItemFailures": []
    }

    report = Verifier(runtime(), VerifyOptions(settle_s=0.5)).run().to_json()
    backwards = report["versions_went_backwards"]
    assert backwards["projections"]["orders"] == 3
    assert backwards["projections"]["customer_totals"] == 3  # its groups drifted: records are checked
    assert "table restored?" in backwards["advice"] and "backfill --rebuild" in backwards["advice"]
    human = CliRunner().invoke(cli, ["verify", "--settle", "0.5"])
    assert human.exit_code == 1
    assert "source versions went backwards (table restored?)" in human.output
    assert "run `projector backfill --rebuild`" in human.output

    backfill(rebuild=True)
    after = [update_order(dynamodb, table, order, status="PAID") for order in after]  # v3 after the rebuild
    fresh = capture_records(dynamodb, dynamodbstreams, table)[len(before_restore) + len(live) :]
    assert len(fresh) == 2 and handle(fresh) == {"batchItemFailures": []}
    assert_projections_equal_source(dynamodb, opensearch, pipeline)
    clean = Verifier(runtime(), VerifyOptions(settle_s=0.5)).run().to_json()
    assert clean["drift"] == 0 and "versions_went_backwards" not in clean
