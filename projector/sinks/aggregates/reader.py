"""Read one aggregate: the group row of the read generation, rendered with exact decimals."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from projector.projection.base import Count
from projector.retry.deadline import Deadline
from projector.retry.policy import retrying
from projector.retry.transient import is_transient
from projector.sinks.aggregates import numbers
from projector.sinks.aggregates.calls import Calls
from projector.sinks.aggregates.keys import generation_sk, group_pk
from projector.sinks.aggregates.keys import key as row_key
from projector.sinks.aggregates.numbers import decimal_of
from projector.sinks.aggregates.table import read_meta

if TYPE_CHECKING:
    from projector.config.settings import Settings
    from projector.projection.base import AggregateProjection, Measure

logger = logging.getLogger(__name__)


def render_measure(measure: Measure, value: Decimal) -> int | str:
    """Counts and integer sums as int; sums as text with exactly ``places`` fractional digits ("120.50")."""
    if isinstance(measure, Count) or measure.integer:
        return int(value)
    return numbers.render(value, measure.places)


def read_aggregate(
    client: Any,
    settings: Settings,
    projection: AggregateProjection,
    key: str,
    generation: int | None = None,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """``{"name", "key", measure: value, ...}`` for one group; zeros when no live item is in it.

    ``generation`` reads another generation than the live one (to check a rebuild before switching).
    """
    calls = Calls(client, deadline or Deadline.never())
    if generation is None:
        generation = read_meta(calls, settings.aggregates_table, projection).read_generation
    for attempt in retrying(calls.deadline, is_transient, what=f"{projection.name} aggregate read"):
        with attempt:
            response = calls(
                "get_item",
                TableName=settings.aggregates_table,
                ConsistentRead=True,
                Key=row_key(group_pk(projection.name, key), generation_sk(generation)),
            )
    row = response.get("Item") or {}
    values = {
        name: render_measure(measure, decimal_of(row[name]) if name in row else Decimal(0))
        for name, measure in projection.measures.items()
    }
    return {"name": projection.name, "key": key, **values}
