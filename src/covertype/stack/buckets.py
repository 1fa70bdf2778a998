"""``covertype-buckets NAME...``: create the S3 buckets the stack needs, if they are missing.

Reads the endpoint from ``S3_ENDPOINT_URL`` and the keys from ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``: compose's `minio-init` job runs it against MinIO, the tests against SeaweedFS.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping

import s3fs

logger = logging.getLogger(__name__)


def s3_filesystem(environment: Mapping[str, str] = os.environ) -> s3fs.S3FileSystem:
    """An S3 client for the endpoint and keys that ``environment`` names (this process's by default)."""
    return s3fs.S3FileSystem(
        key=environment["AWS_ACCESS_KEY_ID"],
        secret=environment["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": environment["S3_ENDPOINT_URL"]},
    )


def ensure_buckets(names: list[str], filesystem: s3fs.S3FileSystem) -> list[str]:
    """Create each missing bucket; return the ones created. Running it again changes nothing."""
    created = []
    for name in names:
        if filesystem.exists(name):
            continue
        filesystem.mkdir(name)
        created.append(name)
    return created


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="covertype-buckets", description=__doc__)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    created = ensure_buckets(args.names, s3_filesystem())
    logger.info("Buckets ready: %s (created: %s)", ", ".join(args.names), ", ".join(created) or "none")


if __name__ == "__main__":
    main()
