"""Document ids: short item ids unchanged, long ones hashed, never two item ids on one document id."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from projector.projection.document_ids import HASHED_PREFIX, MAX_ID_BYTES, document_id, is_hashed, item_id_of
from projector.sinks.opensearch.types import meta_of
from projector.versioning import ItemState

STATE = ItemState(life=0, rev=1, deleted=False, position=None, seen_at=1.0)


def digest(text: str) -> str:
    return HASHED_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def test_ids_that_fit_are_kept_as_they_are() -> None:
    for item_id in ("O0000001", "a" * 512, "é" * 256, '["pk","sk"]', "~sha256~short"):
        assert document_id(item_id) == item_id
        assert "key" not in meta_of(STATE, True, item_id)


def test_ids_over_512_utf8_bytes_are_hashed_stably() -> None:
    for item_id in ("a" * 513, "订单" * 100, "é" * 257, "00ff" * 300):
        assert len(item_id.encode()) > MAX_ID_BYTES
        assert document_id(item_id) == digest(item_id) == document_id(item_id)
        assert is_hashed(document_id(item_id)) and len(document_id(item_id).encode()) == 72
        meta = meta_of(STATE, True, item_id)
        assert meta["key"] == item_id and item_id_of(document_id(item_id), meta) == item_id


def test_a_natural_id_shaped_like_a_digest_is_hashed_too() -> None:
    lookalike = digest("a" * 600)
    assert document_id(lookalike) == digest(lookalike) != lookalike
    assert meta_of(STATE, True, lookalike)["key"] == lookalike


@settings(max_examples=200)
@given(st.lists(st.text(min_size=0, max_size=300), min_size=2, max_size=6, unique=True))
def test_different_item_ids_never_share_a_document_id(item_ids: list[str]) -> None:
    padded = item_ids + [text * 3 for text in item_ids] + [digest(text) for text in item_ids]
    unique = list(dict.fromkeys(padded))
    ids = [document_id(item_id) for item_id in unique]
    assert len(set(ids)) == len(ids)
    assert all(len(doc_id.encode()) <= MAX_ID_BYTES for doc_id in ids)
