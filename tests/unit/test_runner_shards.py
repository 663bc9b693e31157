"""Shard discovery and lineage, on synthetic DescribeStream data (moto never splits a shard)."""

from __future__ import annotations

import pytest
from test_runner_fakes import ARN, FakeDynamoDB, FakeStreams

from projector.runner.shards import (
    Shard,
    StreamNotFound,
    describe_shards,
    find_stream_arn,
    order_by_lineage,
    ready_shards,
    skipped_by_latest,
)

pytestmark = pytest.mark.unit


def _shard(shard_id: str, parent: str | None = None, start: str = "1", end: str | None = None) -> Shard:
    return Shard(shard_id, parent, start, end)


def test_describe_reads_every_page_and_keeps_lineage() -> None:
    streams = FakeStreams(page_size=2)
    streams.add_shard("root")
    streams.add_shard("left", parent="root")
    streams.add_shard("right", parent="root")
    streams.add_shard("grandchild", parent="left")
    streams.close("root")

    shards = describe_shards(streams, ARN)

    assert [shard.shard_id for shard in shards] == ["root", "left", "right", "grandchild"]
    assert [call for call, _ in streams.calls].count("describe_stream") == 2
    assert shards[0].closed and not shards[1].closed
    assert shards[1].parent_shard_id == "root"


def test_a_child_waits_for_its_parent() -> None:
    shards = [_shard("parent", end="9"), _shard("child", "parent", "10")]
    assert [shard.shard_id for shard in ready_shards(shards, finished=set(), busy=set())] == ["parent"]
    assert ready_shards(shards, finished=set(), busy={"parent"}) == []
    assert [shard.shard_id for shard in ready_shards(shards, finished={"parent"}, busy=set())] == ["child"]
    assert ready_shards(shards, finished={"parent", "child"}, busy=set()) == []


def test_both_children_of_a_split_start_together_once_the_parent_is_done() -> None:
    shards = [_shard("p", end="9"), _shard("a", "p", "10"), _shard("b", "p", "11"), _shard("c", "a", "20")]
    ready = ready_shards(shards, finished={"p"}, busy=set())
    assert [shard.shard_id for shard in ready] == ["a", "b"]


def test_a_trimmed_parent_does_not_block_its_child() -> None:
    shards = [_shard("child", parent="gone-after-24h", start="10")]
    assert [shard.shard_id for shard in ready_shards(shards, finished=set(), busy=set())] == ["child"]


def test_lineage_order_puts_parents_first_whatever_the_listing_order() -> None:
    shards = [_shard("child", "parent", "5"), _shard("other", None, "3"), _shard("parent", None, "7", "8")]
    assert [shard.shard_id for shard in order_by_lineage(shards)] == ["other", "parent", "child"]


def test_a_lineage_cycle_does_not_hang() -> None:
    shards = [_shard("a", "b"), _shard("b", "a")]
    assert {shard.shard_id for shard in order_by_lineage(shards)} == {"a", "b"}


def test_latest_skips_only_closed_shards() -> None:
    shards = [_shard("old", end="9"), _shard("open", "old", "10")]
    assert [shard.shard_id for shard in skipped_by_latest(shards)] == ["old"]


def test_stream_arn_and_clear_errors() -> None:
    dynamodb = FakeDynamoDB({"orders": ARN, "plain": None})
    assert find_stream_arn(dynamodb, "orders") == ARN
    with pytest.raises(StreamNotFound, match="has no stream"):
        find_stream_arn(dynamodb, "plain")
    with pytest.raises(StreamNotFound, match="does not exist"):
        find_stream_arn(dynamodb, "missing")
