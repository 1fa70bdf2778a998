"""``covertype-probe URL``: exit 0 when URL answers 2xx, else print why and exit 1.

Container healthchecks use it (the project image has no curl), and so does ``make check-stack``.
"""

from __future__ import annotations

import argparse
import sys

import httpx


def probe(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether ``url`` is up, and a one-line reason a person can act on."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.ConnectError as error:
        return False, f"connection refused or host unknown ({error})"
    except httpx.TimeoutException:
        return False, f"no answer within {timeout:g} s"
    except httpx.HTTPError as error:
        return False, f"{type(error).__name__}: {error}"
    if response.is_success:
        return True, f"HTTP {response.status_code}"
    return False, f"HTTP {response.status_code}: {response.text[:120].strip()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="covertype-probe", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    up, reason = probe(args.url, args.timeout)
    if not up:
        print(f"{args.url}: {reason}", file=sys.stderr)
    sys.exit(0 if up else 1)


if __name__ == "__main__":
    main()
