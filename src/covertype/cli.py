"""The project's Kedro commands: Kedro's own ``kedro run``, except that a first-run mistake ends in one line.

A fresh clone's first ``kedro run`` meets missing services (no batch API, no MySQL for ``--env
stack``, no MLflow server): waiting or a 40-line traceback helps nobody. The datasets and checks
raise ``FirstRunError`` with what is missing, where, and the command that starts it; ``run`` prints
that message as click's one-line ``Error: ...`` and exits 1. Any other failure keeps Kedro's
traceback. Kedro loads this module's ``cli`` group and lets its commands override its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from covertype.first_run import explain


@click.group(name="covertype")
def cli() -> None:
    """Kedro's project commands, with first-run failures said in one line."""


def _explaining(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Exception as error:
            message = explain(error)
            if message is None:
                raise
            raise click.ClickException(message) from None

    return run


#: ``kedro run`` and ``python -m covertype`` (Kedro's ``find_run_command`` looks for ``run`` here).
run = click.Command(
    name="run",
    params=kedro_run.params,
    callback=_explaining(kedro_run.callback),
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)
cli.add_command(run)
