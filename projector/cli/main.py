"""Entry point of the `projector` console script.

Commands live one per module in ``projector.cli.commands`` and are found there, so adding a command
never edits this file. Errors end as one clear line on stderr and a non-zero exit, never a traceback
(set PROJECTOR_DEBUG=1 to see one).
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys

import click

from projector.cli.output import CommandError

logger = logging.getLogger(__name__)


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._commands())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._commands().get(name)

    def _commands(self) -> dict[str, click.Command]:
        import projector.cli.commands as package

        found: dict[str, click.Command] = {}
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            command = getattr(module, "command", None)
            if isinstance(command, click.Command) and command.name:
                found[command.name] = command
        return found


@click.group(
    cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """projector: exact, idempotent projections of a DynamoDB table's stream.

    Configuration comes from PROJECTOR_* environment variables (see the README); the defaults point at
    the local servers that `scripts/services start` runs.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if verbose == 0:
        # opensearch-py logs every failed request with a traceback; the command reports it in one line.
        logging.getLogger("opensearch").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> None:
    from projector.config.exceptions import ConfigurationError

    try:
        cli.main(args=argv, prog_name="projector", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (CommandError, ConfigurationError) as error:
        if os.environ.get("PROJECTOR_DEBUG"):
            raise
        click.echo(f"error: {error}", err=True)
        sys.exit(getattr(error, "exit_code", 2))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:
        if os.environ.get("PROJECTOR_DEBUG"):
            raise
        click.echo(
            f"error: {type(error).__name__}: {error} (PROJECTOR_DEBUG=1 shows the traceback)", err=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
