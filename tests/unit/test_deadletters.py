"""Dead letters are written once, never overwritten, listed in order and moved aside once redriven."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from projector.config import Settings
from projector.deadletters import DeadLetter, FileDeadLetterStore, S3DeadLetterStore, open_store

pytestmark = pytest.mark.unit

RECORD = {
    "eventID": "7de3041dd709b024af6f29e4fa13d34c",
    "eventName": "MODIFY",
    "dynamodb": {
        "ApproximateCreationDateTime": 1700000000,
        "Keys": {"order_id": {"S": "o-1"}},
        "NewImage": {"order_id": {"S": "o-1"}, "total": {"N": "12.50"}},
        "SequenceNumber": "4917400000000000000000001",
    },
    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000",
}


def letter(**overrides: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "reason": "poison",
        "projection": "orders",
        "error": "item has no 'version'",
        "sequence_number": RECORD["dynamodb"]["SequenceNumber"],
        "record": RECORD,
    }
    return DeadLetter(**{**fields, **overrides})


def files(root: Path, folder: str) -> list[str]:
    return sorted(path.name for path in (root / folder).glob("*.json"))


def test_putting_two_letters_writes_two_files(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    first, second = letter(), letter(error="another")
    assert first.id != second.id
    paths = [store.put(first), store.put(second)]
    assert len(set(paths)) == 2 and all(Path(p).exists() for p in paths)
    assert files(tmp_path, "pending") == sorted([f"{first.id}.json", f"{second.id}.json"])


def test_the_same_letter_is_never_overwritten(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    original = letter()
    path = Path(store.put(original))
    written = path.read_text(encoding="utf-8")
    with pytest.raises(FileExistsError):
        store.put(original.model_copy(update={"error": "overwrite attempt"}))
    assert path.read_text(encoding="utf-8") == written
    assert [entry.error for entry in store.list()] == [original.error]


def test_a_letter_keeps_the_whole_record(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    original = letter()
    stored = json.loads(Path(store.put(original)).read_text(encoding="utf-8"))
    assert stored["record"] == RECORD
    (read_back,) = store.list()
    assert read_back == original


def test_list_is_in_id_order_and_empty_for_a_new_store(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path / "not-yet-created")
    assert list(store.list()) == []
    letters = [letter(error=f"error {index}") for index in range(5)]
    for entry in reversed(letters):
        store.put(entry)
    assert [entry.id for entry in store.list()] == sorted(entry.id for entry in letters)


def test_ids_are_unique_and_start_with_their_creation_time() -> None:
    ids = [letter().id for _ in range(200)]
    assert len(set(ids)) == len(ids)
    times = [datetime.strptime(i.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ") for i in ids]
    assert times == sorted(times)  # so a file listing is in creation order (to the microsecond)


def test_mark_redriven_moves_the_letter_aside(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    kept, redriven = letter(), letter(error="redriven")
    store.put(kept)
    store.put(redriven)
    store.mark_redriven(redriven)
    assert files(tmp_path, "pending") == [f"{kept.id}.json"]
    assert files(tmp_path, "redriven") == [f"{redriven.id}.json"]
    assert [entry.id for entry in store.list()] == [kept.id]
    assert sorted(entry.id for entry in store.list(include_redriven=True)) == sorted([kept.id, redriven.id])


def test_mark_redriven_of_an_unknown_letter_fails_loudly(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    with pytest.raises(FileNotFoundError):
        store.mark_redriven(letter())


def test_a_letter_needs_a_known_reason() -> None:
    with pytest.raises(ValidationError):
        letter(reason="unknown")
    for reason in ("malformed", "poison", "retries_exhausted"):
        assert letter(reason=reason).reason == reason


def test_open_store_follows_the_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = open_store(Settings(dead_letters=f"file://{tmp_path}/letters"))
    assert isinstance(absolute, FileDeadLetterStore) and absolute.root == tmp_path / "letters"
    monkeypatch.chdir(tmp_path)
    relative = open_store(Settings(dead_letters="file://.projector/dead-letters"))
    assert isinstance(relative, FileDeadLetterStore) and relative.root == Path(".projector/dead-letters")
    relative.put(letter())
    assert len(files(tmp_path / ".projector" / "dead-letters", "pending")) == 1


class FakeS3:
    """Just enough of an S3 client to check what the S3 store asks for."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def put_object(self, **kwargs: Any) -> None:
        self.calls.append(("put_object", kwargs))
        if kwargs.get("IfNoneMatch") == "*" and kwargs["Key"] in self.objects:
            raise RuntimeError("PreconditionFailed")
        self.objects[kwargs["Key"]] = kwargs["Body"]

    def copy_object(self, **kwargs: Any) -> None:
        self.calls.append(("copy_object", kwargs))
        self.objects[kwargs["Key"]] = self.objects[kwargs["CopySource"]["Key"]]

    def delete_object(self, **kwargs: Any) -> None:
        self.calls.append(("delete_object", kwargs))
        del self.objects[kwargs["Key"]]


def test_the_s3_store_writes_only_if_absent_and_moves_on_redrive() -> None:
    client = FakeS3()
    store = S3DeadLetterStore("letters", "/projector/", client)
    original = letter()
    assert store.put(original) == f"s3://letters/projector/pending/{original.id}.json"
    assert client.calls[0][1]["IfNoneMatch"] == "*"
    with pytest.raises(RuntimeError, match="PreconditionFailed"):
        store.put(original)
    store.mark_redriven(original)
    assert sorted(client.objects) == [f"projector/redriven/{original.id}.json"]


def test_open_store_for_an_s3_url_uses_the_given_client() -> None:
    client = FakeS3()
    store = open_store(Settings(dead_letters="s3://letters/projector"), s3_client=client)
    assert isinstance(store, S3DeadLetterStore)
    assert (store.bucket, store.prefix, store.client) == ("letters", "projector", client)
