"""`projector backfill`: the options that go without each other are refused before anything runs."""

from __future__ import annotations

import click
import pytest

from projector.cli.commands import backfill, verify
from projector.cli.output import CommandError

EXPORT = ("--from-export", "s3://exports/p/AWSDynamoDB/01234567890123-abcdefgh/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (*EXPORT, "--total-segments", "4"),
            "an export load goes without --total-segments, --segment-range and --rebuild-phase: "
            "it is split by its files",
        ),
        ((*EXPORT, "--rebuild-phase", "begin"), "an export load goes without"),
        (
            ("--on-aws", "--resume"),
            "--on-aws goes without --dry-run, --resume, --rebuild-phase and --segment-range: "
            "it runs the whole backfill in the state machine",
        ),
        (("--on-aws", "--dry-run", "--rebuild"), "--on-aws goes without"),
        (
            ("--dry-run", "--rebuild"),
            "--dry-run goes without --rebuild, --rebuild-phase and --resume: it writes nothing",
        ),
        (("--dry-run", "--resume"), "--dry-run goes without"),
        (("--segment-range", "0:2"), "--segment-range needs --total-segments"),
        (("--export-time", "1700000000"), "--export-time goes with --from-export or --export-arn"),
    ],
)
def test_options_that_go_without_each_other_are_refused(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message) as refused:
        backfill.command.main(list(args), standalone_mode=False)
    assert refused.value.exit_code == 2


def _segments(command: click.Command) -> click.Option:
    (option,) = [p for p in command.params if isinstance(p, click.Option) and p.name == "segments"]
    return option


def test_backfill_and_verify_share_one_segments_option() -> None:
    ours, theirs = _segments(backfill.command), _segments(verify.command)
    assert (ours.opts, ours.default, ours.show_default) == (theirs.opts, theirs.default, theirs.show_default)
    assert isinstance(ours.type, click.IntRange) and isinstance(theirs.type, click.IntRange)
    assert (ours.type.min, ours.type.max) == (theirs.type.min, theirs.type.max) == (1, 1000)
    with pytest.raises(click.BadParameter):
        ours.type.convert("0", ours, None)
