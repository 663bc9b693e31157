"""What an item adds to its groups, as stored in its record, and the change between two such shares."""

from __future__ import annotations

from decimal import Decimal

from projector.sinks.aggregates import numbers
from projector.sinks.aggregates.numbers import AttributeValue, decimal_of, number

Contributions = dict[str, dict[str, Decimal]]
"""What one item adds to each of its groups: ``{group_key: {measure: value}}``."""


def encode_contributions(contributions: Contributions) -> AttributeValue:
    return {
        "M": {
            group: {"M": {name: number(value) for name, value in measures.items()}}
            for group, measures in contributions.items()
        }
    }


def decode_contributions(value: AttributeValue | None) -> Contributions:
    if not value:
        return {}
    return {
        group: {name: decimal_of(v) for name, v in measures["M"].items()}
        for group, measures in value["M"].items()
    }


def diff(new: Contributions, old: Contributions) -> Contributions:
    """``new - old`` per group and measure, without zeros (a group whose share did not move is untouched).

    Raises ``NumberOutOfRange`` (naming the measure) when a new value or a difference cannot be stored.
    """
    result: Contributions = {}
    for group in sorted(new.keys() | old.keys()):
        after, before = new.get(group, {}), old.get(group, {})
        deltas: dict[str, Decimal] = {}
        for name in sorted(after.keys() | before.keys()):
            value = numbers.check(after.get(name, Decimal(0)), f"measure {name!r}")
            change = numbers.check(
                numbers.subtract(value, before.get(name, Decimal(0))), f"a change of measure {name!r}"
            )
            if change != 0:
                deltas[name] = change
        if deltas:
            result[group] = deltas
    return result
