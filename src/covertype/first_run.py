"""Failures a newcomer meets on a first run, each said in one line with what to run instead."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from collections.abc import Iterator

import pymysql
import requests

#: pymysql's code for "Can't connect to MySQL server" (refused, unknown host, nothing listening).
MYSQL_CANNOT_CONNECT = 2003


class FirstRunError(Exception):
    """A missing service or artefact, named with where it was looked for and how to get it.

    ``kedro run`` (``covertype.cli``) prints its message as one line instead of a traceback.
    """


class PortInUse(FirstRunError):
    """Another process listens where a service is asked to start."""

    def __init__(self, host: str, port: int, instead: str) -> None:
        super().__init__(
            f"Port {port} on {host} is already in use (another program, or this service started "
            f"earlier): stop it, or use another port: {instead}"
        )


def ensure_port_free(host: str, port: int, instead: str) -> None:
    """Raise ``PortInUse`` when ``host:port`` cannot be bound, before a slow start fails on it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(host, port, instead) from None
            raise


def explain(error: BaseException) -> str | None:
    """The one-line explanation of ``error`` or of an error it was raised from, if it has one."""
    for link in _chain(error):
        if isinstance(link, FirstRunError):
            return str(link)
        if isinstance(link, pymysql.err.OperationalError) and link.args[:1] == (MYSQL_CANNOT_CONNECT,):
            return (
                f"MySQL does not answer ({link.args[1]}): the `stack` environment keeps its rows there. "
                "Start the stack (`docker compose up -d`), or point MYSQL_HOST, MYSQL_PORT, MYSQL_USER and "
                "MYSQL_PASSWORD at a MySQL server (see .env.example); without a stack, drop --env stack."
            )
        if isinstance(link, requests.exceptions.ConnectionError) and "/api/2.0/mlflow/" in _url(link):
            server = _url(link).split("/api/2.0/mlflow/", 1)[0]
            return (
                f"No MLflow server answers at {server}: the `stack` environment tracks runs and models "
                "there. Start the stack (`docker compose up -d`), or set MLFLOW_TRACKING_URI to a running "
                "server (see .env.example); without a stack, drop --env stack."
            )
    return None


def _url(error: requests.exceptions.RequestException) -> str:
    return str(getattr(error.request, "url", "") or "")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it was raised from, and so on (each once)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        # SQLAlchemy keeps the driver's error as ``orig``.
        link = link.__cause__ or link.__context__ or getattr(link, "orig", None)


def main(argv: list[str] | None = None) -> None:
    """``python -m covertype.first_run HOST PORT INSTEAD``: one line and exit 1 when the port is taken."""
    parser = argparse.ArgumentParser(prog="python -m covertype.first_run", description=main.__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("instead", help="how to choose another port, e.g. 'make serve SERVE_PORT=3001'")
    args = parser.parse_args(argv)
    try:
        ensure_port_free(args.host, args.port, args.instead)
    except PortInUse as taken:
        sys.exit(f"Error: {taken}")


if __name__ == "__main__":
    main()
