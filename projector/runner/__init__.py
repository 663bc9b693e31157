"""`projector run`: the source table's stream, read as Lambda's event source mapping reads it.

Units: ``shards`` (discovery and lineage), ``reader`` (GetRecords into Lambda-shaped records),
``checkpoints`` (what was applied, on disk), ``invoker`` (in-process or HTTP), ``consumer`` (one
shard's batching, retries, bisecting and dead letters), ``runner`` (orchestration and signals).
"""

from __future__ import annotations

from projector.runner.checkpoints import CheckpointStore, ShardCheckpoint
from projector.runner.consumer import ConsumerOptions, ShardConsumer
from projector.runner.invoker import (
    HttpInvoker,
    InProcessInvoker,
    InvocationContext,
    Invoker,
    InvokeResult,
    load_handler,
)
from projector.runner.reader import ShardReader, StartingPosition, to_lambda_record
from projector.runner.reports import BatchReport
from projector.runner.runner import Runner, RunnerOptions, RunSummary, Stoppable, stop_on_signals
from projector.runner.shards import Shard, StreamNotFound, find_stream_arn, ready_shards

__all__ = [
    "BatchReport",
    "CheckpointStore",
    "ConsumerOptions",
    "HttpInvoker",
    "InProcessInvoker",
    "InvocationContext",
    "InvokeResult",
    "Invoker",
    "RunSummary",
    "Runner",
    "RunnerOptions",
    "Shard",
    "ShardCheckpoint",
    "ShardConsumer",
    "ShardReader",
    "StartingPosition",
    "Stoppable",
    "StreamNotFound",
    "find_stream_arn",
    "load_handler",
    "ready_shards",
    "stop_on_signals",
    "to_lambda_record",
]
