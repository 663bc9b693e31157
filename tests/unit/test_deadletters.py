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


# --- permissions, ids from file names, bad letters ---------------------------------------------------------


def test_letters_are_private_files_in_private_folders(tmp_path: Path) -> None:
    import os
    import stat

    root = tmp_path / "letters"
    old = os.umask(0o022)
    try:
        path = Path(FileDeadLetterStore(root).put(letter()))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    store = FileDeadLetterStore(root)
    store.mark_redriven(next(store.list()))
    moved = root / "redriven" / path.name
    assert stat.S_IMODE(moved.stat().st_mode) == 0o600
    assert stat.S_IMODE(moved.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("bad_id", ["../../x", "a/b", "..", "", "x.json", "a b", "x" * 129])
def test_an_id_that_could_leave_the_folder_is_refused(bad_id: str) -> None:
    with pytest.raises(ValidationError):
        letter(id=bad_id)


def test_the_id_comes_from_the_file_name_not_its_contents(tmp_path: Path) -> None:
    """A letter whose contents claim ``../../x`` is read under its file name and moved by that name."""
    store = FileDeadLetterStore(tmp_path)
    good = letter()
    store.put(good)
    forged = json.loads(letter().model_dump_json())
    forged["id"] = "../../escaped"
    (tmp_path / "pending" / "20200101T000000000000Z-aaaaaaaaaaaa.json").write_text(json.dumps(forged))
    listed = list(store.list())
    assert sorted(item.id for item in listed) == sorted([good.id, "20200101T000000000000Z-aaaaaaaaaaaa"])
    assert store.skipped == []
    for item in listed:
        store.mark_redriven(item)
    assert files(tmp_path, "redriven") == sorted(f"{item.id}.json" for item in listed)
    assert not list(tmp_path.parent.glob("escaped*"))


def test_a_mismatched_but_valid_id_takes_the_file_name(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    stored = letter()
    path = Path(store.put(stored))
    renamed = path.with_name("20200101T000000000000Z-bbbbbbbbbbbb.json")
    path.rename(renamed)
    (listed,) = list(store.list())
    assert listed.id == "20200101T000000000000Z-bbbbbbbbbbbb"
    store.mark_redriven(listed)
    assert files(tmp_path, "redriven") == [renamed.name]


def test_bad_letters_are_skipped_and_reported(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    first, second = letter(), letter()
    store.put(first)
    store.put(second)
    (tmp_path / "pending" / "0-not-json.json").write_text("{oops")
    (tmp_path / "pending" / "bad name!.json").write_text(letter().model_dump_json())
    listed = list(store.list())
    assert {item.id for item in listed} == {first.id, second.id}
    assert sorted(bad.name for bad in store.skipped) == ["0-not-json.json", "bad name!.json"]


def test_a_redrive_goes_on_past_a_bad_letter(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from projector.redrive import redrive

    store = FileDeadLetterStore(tmp_path)
    good = [letter(), letter()]
    for item in good:
        store.put(item)
    (tmp_path / "pending" / "0-not-json.json").write_text("{oops")

    class Applier:
        def apply(self, records: list[Any], deadline: Any, **_: Any) -> Any:
            return SimpleNamespace(first_failed=None, failures={})

    results = list(redrive(SimpleNamespace(dead_letters=store, stream_applier=Applier())))
    assert sorted(r.id for r in results if r.redriven) == sorted(item.id for item in good)
    (bad,) = [r for r in results if not r.redriven]
    assert bad.id == "0-not-json.json" and "unreadable" in str(bad.error)
    assert files(tmp_path, "redriven") == sorted(f"{item.id}.json" for item in good)
    assert files(tmp_path, "pending") == ["0-not-json.json"]


def test_the_s3_store_skips_bad_letters_and_names_ids_by_key() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="letters")
        store = S3DeadLetterStore("letters", "dead-letters", client)
        good = letter()
        store.put(good)
        forged = json.loads(letter().model_dump_json())
        forged["id"] = "../../escaped"
        client.put_object(
            Bucket="letters", Key="dead-letters/pending/2020-aaaa.json", Body=json.dumps(forged).encode()
        )
        client.put_object(Bucket="letters", Key="dead-letters/pending/0-bad.json", Body=b"{oops")
        client.put_object(Bucket="letters", Key="dead-letters/pending/bad name.json", Body=b"{}")
        listed = list(store.list())
        assert sorted(item.id for item in listed) == sorted([good.id, "2020-aaaa"])
        assert sorted(bad.name for bad in store.skipped) == ["0-bad.json", "bad name.json"]
        for item in listed:
            store.mark_redriven(item)
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="letters")["Contents"])
        assert keys == sorted(
            [
                "dead-letters/pending/0-bad.json",
                "dead-letters/pending/bad name.json",
                "dead-letters/redriven/2020-aaaa.json",
                f"dead-letters/redriven/{good.id}.json",
            ]
        )
