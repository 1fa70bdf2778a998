"""The native S3 server (SeaweedFS) takes writes into as many buckets as the tests and the stack make."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


def test_every_new_bucket_takes_writes(s3_server):
    bucket = s3_server.filesystem()
    names = [f"covertype-many-{index}-{uuid.uuid4().hex[:6]}" for index in range(6)]
    try:
        for name in names:
            bucket.mkdir(name)
            bucket.pipe(f"{name}/object.bin", b"x" * 1_000)
        assert all(bucket.cat(f"{name}/object.bin") == b"x" * 1_000 for name in names)
    finally:
        for name in names:
            bucket.rm(name, recursive=True)
