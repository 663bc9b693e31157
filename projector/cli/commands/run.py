"""`projector run`: read the source table's stream and feed the handler as Lambda would, until stopped."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING

import click

from projector.cli.output import CommandError, json_option

if TYPE_CHECKING:
    from projector.runner.runner import StartAt

logger = logging.getLogger(__name__)


@click.command("run")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Most records per invocation (Lambda's BatchSize).",
)
@click.option(
    "--window",
    "window_s",
    type=click.FloatRange(0, 300),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait up to this long to fill a batch (MaximumBatchingWindowInSeconds).",
)
@click.option(
    "--from",
    "start",
    type=click.Choice(["trim-horizon", "latest"]),
    default="trim-horizon",
    show_default=True,
    help="Where to start when there is no checkpoint yet (StartingPosition).",
)
@click.option(
    "--bisect/--no-bisect",
    default=False,
    show_default=True,
    help="Split a failing batch in halves before retrying (BisectBatchOnFunctionError).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(-1, 10_000),
    default=10,
    show_default=True,
    help="Retries before the failing records go to the dead letters; -1 retries forever "
    "(MaximumRetryAttempts).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="The function's timeout: the context's deadline; longer counts as failed.",
)
@click.option(
    "--handler",
    "handler_spec",
    default="projector.handler.lambda_handler",
    show_default=True,
    metavar="MODULE:FUNCTION",
    help="The handler to call in-process (module:function or module.function).",
)
@click.option(
    "--invoke-url",
    metavar="URL",
    help="POST batches to this Lambda invoke endpoint instead of calling the handler in-process, "
    "e.g. http://127.0.0.1:8080/2015-03-31/functions/function/invocations (the RIE).",
)
@click.option(
    "--max-batches", type=click.IntRange(min=1), default=None, help="Stop after this many invocations."
)
@click.option(
    "--until-idle",
    "until_idle_s",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop once no record has arrived for this long.",
)
@click.option(
    "--discover-interval",
    "discover_interval_s",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to re-describe the stream for new shards.",
)
@json_option
def command(
    batch_size: int,
    window_s: float,
    start: StartAt,  # click.Choice above allows only these
    bisect: bool,
    max_retries: int,
    timeout_s: float,
    handler_spec: str,
    invoke_url: str | None,
    max_batches: int | None,
    until_idle_s: float | None,
    discover_interval_s: float,
    as_json: bool,
) -> None:
    """Read the source table's stream and feed the handler as Lambda's event source mapping would.

    Batches are Lambda's DynamoDB stream events; batchItemFailures are honoured; checkpoints (under
    PROJECTOR_STATE_DIR) survive restarts. One status line per batch on stderr (--json: one JSON
    object per batch on stdout). SIGINT/SIGTERM stop after the in-flight batch, exit 0.
    """
    from projector.config import load_settings
    from projector.runner import Runner, RunnerOptions, StreamNotFound, load_handler, stop_on_signals
    from projector.runner.checkpoints import StreamCheckpointError
    from projector.runner.reports import BatchReport

    options = RunnerOptions(
        batch_size=batch_size,
        window_s=window_s,
        start=start,
        bisect=bisect,
        max_retries=max_retries,
        timeout_s=timeout_s,
        max_batches=max_batches,
        until_idle_s=until_idle_s,
        invoke_url=invoke_url,
        handler=handler_spec,
        discover_interval_s=discover_interval_s,
    )

    def on_batch(report: BatchReport) -> None:
        if as_json:
            sys.stdout.write(json.dumps(report.to_json()) + "\n")
            sys.stdout.flush()
        else:
            click.echo(report.line(), err=True)

    settings = load_settings()
    handler = None
    if not invoke_url:
        try:
            handler = load_handler(handler_spec)
        except (ImportError, ValueError) as error:
            raise CommandError(
                f"cannot load handler {handler_spec!r}: {type(error).__name__}: {error}"
            ) from None
    try:
        runner = Runner(handler, options=options, settings=settings, on_batch=on_batch)
    except StreamCheckpointError as error:
        raise CommandError(str(error)) from None
    target = invoke_url or handler_spec
    click.echo(
        f"projector run: table {settings.source_table} -> {target} "
        f"(checkpoints {runner.checkpoints.path}); Ctrl-C stops",
        err=True,
    )
    try:
        with stop_on_signals(runner):
            summary = runner.run()
    except StreamNotFound as error:
        raise CommandError(str(error)) from None
    click.echo(f"projector run: stopped ({summary.stop_reason}) after {summary.batches} batches", err=True)
