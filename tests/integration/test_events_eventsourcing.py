"""The ``eventsourcing`` preset proven with the eventsourcing library itself (eventsourcing-dynamodb).

An eventsourcing application saves aggregates to the moto server through the library's DynamoDB
persistence module; projector projects the table it wrote (stream records and a backfill) and the
documents equal the library's own aggregates. This module is also the projections module of its test.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import NAMESPACE_URL, uuid5

import pytest
from pydantic import BaseModel

from projector import Count
from projector.events import Event, EventAggregateProjection, EventStreamProjection, eventsourcing_preset
from projector.retry import Deadline
from projector.sinks.aggregates import read_aggregate
from tests.support.events import events_runtime
from tests.support.streams import capture_records

eventsourcing = pytest.importorskip("eventsourcing")
pytest.importorskip("eventsourcing_dynamodb")

from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate, event  # noqa: E402

pytestmark = pytest.mark.integration


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @staticmethod
    def create_id(name: str) -> Any:
        return uuid5(NAMESPACE_URL, f"/dogs/{name}")

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class TrainingSchool(Application):
    def register(self, name: str) -> None:
        self.save(Dog(name))

    def add_trick(self, name: str, trick: str) -> None:
        dog = self.repository.get(Dog.create_id(name))
        dog.add_trick(trick)
        self.save(dog)

    def dog(self, name: str) -> Dog:
        return self.repository.get(Dog.create_id(name))


class Registered(BaseModel):
    event_type: ClassVar[str] = "Dog.Registered"
    name: str
    timestamp: str  # the library's transcoder wraps datetimes; the preset unwraps them


class TrickAdded(BaseModel):
    event_type: ClassVar[str] = "Dog.TrickAdded"
    trick: str


dogs = EventStreamProjection(
    name="dogs",
    key_attributes=("dog_id",),
    layout=eventsourcing_preset(),
    category="Dog",
    version_field="version",
    initial=lambda stream_id: {"dog_id": stream_id, "name": None, "tricks": []},
    handlers={
        Registered: lambda state, e: {**state, "name": e.data.name},
        TrickAdded: lambda state, e: {**state, "tricks": [*state["tricks"], e.data.trick]},
    },
    text_fields=("tricks",),
    mappings={
        "properties": {
            "dog_id": {"type": "keyword"},
            "name": {"type": "keyword"},
            "tricks": {"type": "text"},
            "version": {"type": "long"},
        }
    },
)


def _trick(event: Event[TrickAdded]) -> list[str]:
    return [event.data.trick]


tricks_taught = EventAggregateProjection(
    name="tricks_taught",
    layout=eventsourcing_preset(),
    category="Dog",
    events=(TrickAdded,),
    group_name="trick",
    measures={"times": Count()},
    groups=_trick,
)


@pytest.fixture
def runtime(settings_env: Any, monkeypatch: pytest.MonkeyPatch, opensearch: Any, dynamodb: Any) -> Any:
    monkeypatch.setenv("PROJECTOR_PROJECTIONS", __name__)
    return events_runtime()  # creates the events table in the eventsourcing layout, with its stream


def test_an_eventsourcing_application_is_projected(
    runtime: Any, opensearch: Any, dynamodb: Any, dynamodbstreams: Any
) -> None:
    table = runtime.settings.source_table
    assert {k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]} == {
        "originator_id",
        "originator_version",
    }
    school = TrainingSchool(
        env={
            "PERSISTENCE_MODULE": "eventsourcing_dynamodb",
            "DYNAMO_ENDPOINT_URL": "http://127.0.0.1:5000",
            "DYNAMO_TABLE": table,
        }
    )
    names = {"Fido": ["roll over", "play dead"], "Rex": ["sit"], "Bella": []}
    for name, tricks in names.items():
        school.register(name)
        for trick in tricks:
            school.add_trick(name, trick)
    school.add_trick("Fido", "sit")

    records = capture_records(dynamodb, dynamodbstreams, table)
    outcome = runtime.stream_applier.apply(records, Deadline.after(60))
    assert outcome.first_failed is None and outcome.dead_lettered == 0, outcome.failures
    alias = runtime.settings.index_prefix + "dogs"
    for name in names:
        dog = school.dog(name)
        document = opensearch.get(index=alias, id=str(dog.id))["_source"]
        document.pop("_projector")
        assert document == {"dog_id": str(dog.id), "name": name, "tricks": dog.tricks, "version": dog.version}
    for trick, times in {"sit": 2, "roll over": 1, "play dead": 1}.items():
        assert read_aggregate(runtime.dynamodb, runtime.settings, tricks_taught, trick)["times"] == times

    from tests.integration.test_backfill import backfill, verify

    assert backfill(runtime, segments=2, rebuild=True).status == "finished"
    assert verify(runtime, settle_s=0).drift == 0
    opensearch.indices.refresh(index=alias)
    hits = opensearch.search(index=alias, body={"query": {"match": {"tricks": "dead"}}})["hits"]["hits"]
    assert [hit["_source"]["name"] for hit in hits] == ["Fido"]
