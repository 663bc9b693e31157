"""One exception base: every public error of projector is a ``ProjectorError`` and keeps its other bases."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from botocore.exceptions import BotoCoreError

import projector
from projector.exceptions import ProjectorError

pytestmark = pytest.mark.unit

# Raised and caught inside one module to drive a retry; a caller never sees them.
PRIVATE_SIGNALS = {
    "projector.events.sink._Retry",
    "projector.events.store._Conflict",
    "projector.sinks.aggregates.writer._Unprocessed",
    "projector.sinks.aggregates.writer._Cancelled",
    "projector.sinks.aggregates.writer._Unfinished",
    "projector.verify.restore._Unprocessed",
    "projector.stores.aggregates._Unprocessed",
}


def exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(projector.__path__, "projector."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def test_every_public_error_is_a_projector_error() -> None:
    classes = exception_classes()
    outside = {name for name, cls in classes.items() if not issubclass(cls, ProjectorError)}
    assert outside == {name for name in PRIVATE_SIGNALS if name in classes}
    assert len(classes) - len(outside) >= 25  # the walk really found the package's errors


@pytest.mark.parametrize(
    ("name", "other_base"),
    [
        ("projector.records.exceptions.DecodeError", ValueError),
        ("projector.records.exceptions.DecodeError", "projector.records.exceptions.MalformedRecordError"),
        ("projector.query.types.QueryError", ValueError),
        ("projector.query.types.SearchUnavailable", RuntimeError),
        ("projector.retry.transient.TruncatedResponseError", BotoCoreError),
        ("projector.sinks.opensearch.serializer.InexactNumberError", ValueError),
        ("projector.sinks.aggregates.table.RebuildError", RuntimeError),
        ("projector.versioning.exceptions.VersionError", ValueError),
        ("projector.events.types.EventError", ValueError),
        (
            "projector.projection.validation.KeyMismatchError",
            "projector.config.exceptions.ConfigurationError",
        ),
    ],
)
def test_errors_keep_their_other_bases(name: str, other_base: type[BaseException] | str) -> None:
    classes = exception_classes()
    base = classes[other_base] if isinstance(other_base, str) else other_base
    assert issubclass(classes[name], ProjectorError)
    assert issubclass(classes[name], base)


def test_a_cut_short_answer_is_still_caught_as_a_botocore_error() -> None:
    from projector.clients import TruncatedResponseError

    with pytest.raises(BotoCoreError) as raised:
        raise TruncatedResponseError(operation="GetRecords", size=12)
    assert (
        str(raised.value)
        == "GetRecords: the answer was cut short (12 bytes of invalid JSON); retrying is safe"
    )
