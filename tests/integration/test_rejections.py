"""One way to reject a change (issue 15), against the moto server: a change DynamoDB refuses is poison and
the item keeps the last state it can hold, as in the fold and in the OpenSearch sink.

Before issue 15 the aggregate sink dropped the item's whole batch when DynamoDB refused its write: the
valid change before the refused one was neither applied nor dead-lettered.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from projector.config import Settings
from projector.retry import Deadline
from projector.sinks.aggregates import AggregateSink, read_aggregate
from tests.integration.test_aggregate_sink import Source, base_settings, batch, client, settings, sink
from tests.integration.test_exactness_aggregates import TAGS, assert_exact

pytestmark = pytest.mark.integration
__all__ = ["base_settings", "client", "settings", "sink"]  # fixtures of other test modules


def test_a_write_dynamodb_refuses_is_poison_and_the_item_keeps_the_change_before_it(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    source = Source()
    small = source.put("o1", tags=["small"], total=Decimal("1.50"))
    kept = dict(source.items["o1"])
    fat_tags = [f"{n:02d}" + "t" * 5000 for n in range(90)]  # a 450 KB record: DynamoDB refuses it
    fat = source.put("o1", tags=fat_tags)
    other = source.put("o2", tags=["small"], total=Decimal("2.00"))
    delivery = [small, fat, other]
    for attempt in range(2):  # and a redelivery: the refused change again, the rest stale
        result = sink.apply(TAGS, batch(delivery), Deadline.after(60))
        assert not result.failed, result.failed
        assert [(c.keys["order_id"], c.sequence_number) for c, _ in result.poison] == [
            ("o1", fat.sequence_number)
        ]
        assert "DynamoDB refused" in result.poison[0][1] and "tag_totals" in result.poison[0][1]
        assert (result.applied, result.stale) == ((2, 0) if attempt == 0 else (0, 2))
    live = {**source.items, "o1": kept}  # the refused change is not applied: the one before it counts
    assert_exact(client, settings, TAGS, live, ["small", fat_tags[0], fat_tags[-1]])
    assert read_aggregate(client, settings, TAGS, "small")["items"] == 2
