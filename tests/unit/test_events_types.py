"""Event layouts, typed events, upcasters, the unknown-type rule and the pure fold."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from projections.order_events import order_views, paid_by_day
from projector.events import EventError, EventStreamProjection, eventsourcing_preset, projector_preset
from projector.events.fold import fold, fold_all
from projector.events.types import EventCatalog, recorded_event


def _item(version: Any = 1, type_: str = "OrderPlaced", data: Any = None, stream: Any = "order-1") -> dict:
    item = {"stream_id": stream, "type": type_, "recorded_at": "2026-01-01T00:00:00Z"}
    if version is not None:
        item["version"] = version
    item["data"] = (
        data
        if data is not None
        else {"order_id": "1", "customer_id": "c", "placed_at": "2026-01-01T00:00:00Z"}
    )
    return item


def test_presets() -> None:
    assert projector_preset().key_attributes == ("stream_id", "version")
    es = eventsourcing_preset()
    assert es.key_attributes == ("originator_id", "originator_version")
    assert es.category_of("0f0e-11", "Dog.Registered") == "Dog"
    assert projector_preset().category_of("order-12-3") == "order"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (_item(version=None), "version"),
        (_item(version="7"), "version"),
        (_item(version=Decimal("1.5")), "version"),
        (_item(version=Decimal(0)), "version"),
        (_item(stream=None), "stream_id"),
        (_item(data=[1]), "data"),
    ],
)
def test_bad_events_name_the_field(item: dict, field: str) -> None:
    with pytest.raises(EventError) as error:
        recorded_event(item, projector_preset())
    assert error.value.field == field
    assert str(error.value).startswith(field)


def test_payload_failing_its_model_names_the_field_not_the_value() -> None:
    item = _item(
        version=Decimal(2),
        type_="ItemAdded",
        data={"sku": "a", "title": "t", "qty": "many", "price": Decimal(1)},
    )
    with pytest.raises(EventError) as error:
        order_views.typed_event(item)
    assert "data.qty" in str(error.value)
    assert "many" not in str(error.value)


def test_wrong_stream_id_shape_is_poison_other_category_is_skipped() -> None:
    with pytest.raises(EventError, match="stream_id"):
        order_views.typed_event(_item(stream="order1"))
    assert order_views.typed_event(_item(stream="customer-1")) is None


class V2(BaseModel):
    amount: Decimal
    currency: str


def test_upcasters_chain_and_unknown_types() -> None:
    catalog = EventCatalog(
        [V2],
        upcasters={
            "V0": lambda data: ("V1", {"amount": data["cents"] / 100}),
            "V1": lambda data: ("V2", {**data, "currency": "EUR"}),
        },
    )
    event = recorded_event(_item(type_="V0", data={"cents": Decimal(1234)}), projector_preset())
    typed = catalog.typed(event)
    assert typed is not None and typed.type == "V2"
    assert typed.data == V2(amount=Decimal("12.34"), currency="EUR")
    assert catalog.typed(recorded_event(_item(type_="Other", data={}), projector_preset())) is None
    strict = EventCatalog([V2], unknown="poison")
    with pytest.raises(EventError, match="unknown event type"):
        strict.typed(recorded_event(_item(type_="Other", data={}), projector_preset()))


def test_json_payloads_and_transcoded_values() -> None:
    layout = eventsourcing_preset()
    state = json.dumps(
        {"name": "Fido", "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00"}}
    )
    item = {
        "originator_id": "u-1",
        "originator_version": Decimal(1),
        "topic": "m:Dog.Registered",
        "state": state.encode(),
        "created_at": Decimal(1767225600),
    }
    event = recorded_event(item, layout)
    assert event.type == "Dog.Registered"
    assert event.data == {"name": "Fido", "timestamp": "2026-01-01T00:00:00"}
    assert event.recorded_at == "2026-01-01T00:00:00Z"
    with pytest.raises(EventError, match="state"):
        recorded_event({**item, "state": b"{not json"}, layout)


def _steps(*events: tuple[str, dict]) -> list:
    return [
        (n, order_views.typed_event(_item(version=Decimal(n), type_=t, data=d)))
        for n, (t, d) in enumerate(events, start=1)
    ]


PLACED = ("OrderPlaced", {"order_id": "1", "customer_id": "c", "placed_at": "2026-01-01T00:00:00Z"})


def _add(sku: str, qty: int, price: str) -> tuple[str, dict]:
    return ("ItemAdded", {"sku": sku, "title": f"title {sku}", "qty": Decimal(qty), "price": Decimal(price)})


def test_order_fold_follows_the_contract() -> None:
    steps = _steps(
        PLACED,
        _add("a", 1, "2.50"),
        _add("b", 2, "1.25"),
        _add("a", 2, "3.00"),
        ("ItemRemoved", {"sku": "b"}),
        _add("b", 1, "1"),
        ("OrderPaid", {"amount": Decimal("10"), "paid_at": "2026-01-02T10:00:00Z"}),
        ("OrderShipped", {"shipped_at": "2026-01-03T00:00:00Z"}),
    )
    outcome = fold_all(order_views, "order-1", steps)
    document = outcome.state.document
    assert outcome.state.version == 8 and document["version"] == 8
    assert [item["sku"] for item in document["items"]] == ["a", "b"]
    assert document["items"][0] == {
        "sku": "a",
        "title": "title a",
        "qty": Decimal(3),
        "price": Decimal("3.00"),
    }
    assert document["total"] == Decimal("10.00")
    assert document["status"] == "SHIPPED"
    assert document["placed_at"] == "2026-01-01T00:00:00Z"


def test_fold_stops_at_a_gap_and_continues_from_a_stored_state() -> None:
    steps = _steps(PLACED, _add("a", 1, "1"), _add("b", 1, "2"))
    partial = fold(order_views, "order-1", None, [steps[0], steps[2]])
    assert partial.state.version == 1 and partial.stop is not None and partial.stop.gap
    whole = fold_all(order_views, "order-1", steps)
    resumed = fold(order_views, "order-1", partial.state, steps)
    assert resumed.state == whole.state and resumed.applied == 2


def test_tombstone_never_revives_and_handler_errors_stop() -> None:
    class Opened(BaseModel):
        pass

    class Closed(BaseModel):
        pass

    def boom(state: dict, event: Any) -> dict:
        raise RuntimeError("no")

    projection = EventStreamProjection(
        name="boxes",
        mappings={"properties": {"n": {"type": "long"}}},
        initial=lambda stream_id: {"n": 0},
        handlers={Opened: lambda s, e: {"n": s["n"] + 1}, Closed: lambda s, e: None, "Boom": boom},
        events=(type("Boom", (BaseModel,), {}),),
    )

    def step(n: int, t: str) -> tuple:
        return (
            n,
            projection.typed_event(
                {"stream_id": "box-1", "version": Decimal(n), "type": t, "data": {}, "recorded_at": "x"}
            ),
        )

    ended = fold_all(projection, "box-1", [step(1, "Opened"), step(2, "Closed"), step(3, "Opened")])
    assert ended.state.version == 3 and ended.state.ended and ended.applied == 3
    stopped = fold_all(projection, "box-1", [step(1, "Opened"), step(2, "Boom"), step(3, "Opened")])
    assert stopped.state.version == 1 and stopped.stop.version == 2 and "RuntimeError" in stopped.stop.reason


def test_paid_by_day_contributions() -> None:
    paid = _item(
        version=Decimal(5),
        type_="OrderPaid",
        data={"amount": Decimal("12.30"), "paid_at": "2026-01-02T23:59:00Z"},
    )
    assert paid_by_day.contributions(paid) == {
        "2026-01-02": {"order_count": Decimal(1), "revenue": Decimal("12.30")}
    }
    assert paid_by_day.contributions(_item(version=Decimal(1))) == {}
    assert paid_by_day.key_attributes == ("stream_id", "version")
