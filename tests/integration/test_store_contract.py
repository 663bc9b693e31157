"""The store contract (tests/support/store_contract.py) against the real stores on the local servers:
search documents in OpenSearch and aggregates in DynamoDB (moto server), as ``Runtime.store_for``
hands them out. The same assertions run against the in-memory fake in tests/unit/test_store_contract_fake.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from projections.orders import customer_totals, orders
from projector.projection.registry import Registry
from projector.runtime import Runtime
from projector.sinks.aggregates import ensure_table
from projector.sinks.opensearch import indexes
from tests.support.store_contract import StoreCase, StoreContract


class TestRealStores(StoreContract):
    @pytest.fixture(params=[orders, customer_totals], ids=["search", "aggregate"])
    def case(self, request: pytest.FixtureRequest, settings_env: Any) -> StoreCase:
        runtime = Runtime(registry=Registry(documents=(orders,), aggregates=(customer_totals,)))
        if request.param is orders:
            indexes.ensure(runtime.opensearch, orders, runtime.settings.index_prefix)
        else:
            ensure_table(runtime.dynamodb, runtime.settings.aggregates_table)
        store = runtime.store_for(request.param)
        assert store.kind == ("search" if request.param is orders else "aggregate")
        return StoreCase(store, request.param)
