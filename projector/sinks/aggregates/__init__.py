"""Exact aggregate projections in DynamoDB: contribution records + group rows, written in transactions."""

from __future__ import annotations

from projector.sinks.aggregates.plans import AggregateResult
from projector.sinks.aggregates.reader import read_aggregate, render_measure
from projector.sinks.aggregates.table import AggregateTable, Description, Meta, RebuildError, ensure_table
from projector.sinks.aggregates.writer import AggregateSink

__all__ = [
    "AggregateResult",
    "AggregateSink",
    "AggregateTable",
    "Description",
    "Meta",
    "RebuildError",
    "ensure_table",
    "read_aggregate",
    "render_measure",
]
