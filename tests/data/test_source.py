"""The loader downloads and verifies the full set when it can, and falls back to the sample offline."""

import gzip
import hashlib
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from covertype.data.source import RAW_DATA_DIR as SHIPPED_DATA_DIR
from covertype.data.source import SAMPLE_DATASET, ChecksumError, CovertypeFile, load_covertype
from covertype.stack.processes import free_port


@pytest.fixture
def published_file(tmp_path):
    """A small 55-column file without header, as UCI publishes covtype.data.gz, served over HTTP."""
    rows = (
        gzip.decompress((SHIPPED_DATA_DIR / SAMPLE_DATASET.filename).read_bytes())
        .decode()
        .splitlines()[1:201]
    )
    payload = gzip.compress(("\n".join(rows) + "\n").encode())
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    remote = CovertypeFile(
        url=f"http://127.0.0.1:{server.server_port}/covtype.data.gz",
        filename="covtype.data.gz",
        sha256=hashlib.sha256(payload).hexdigest(),
        rows=200,
    )
    yield remote, requests
    server.shutdown()


def _data_dir_with_sample(tmp_path: Path) -> Path:
    data_dir = tmp_path / "raw"
    data_dir.mkdir()
    (data_dir / SAMPLE_DATASET.filename).write_bytes(
        (SHIPPED_DATA_DIR / SAMPLE_DATASET.filename).read_bytes()
    )
    return data_dir


def _files_in(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


def test_the_full_set_is_downloaded_verified_and_cached(tmp_path, published_file):
    remote, requests = published_file
    data_dir = _data_dir_with_sample(tmp_path)
    first = load_covertype("full", data_dir=data_dir, full=remote)
    second = load_covertype("full", data_dir=data_dir, full=remote)
    assert first.shape == (200, 55) and first.equals(second)
    assert len(requests) == 1, "the second load reads the verified cache"
    assert _files_in(data_dir) == {SAMPLE_DATASET.filename, remote.filename}, "no partial file is left behind"


def test_a_download_with_the_wrong_checksum_never_reaches_the_cache(tmp_path, published_file):
    remote, _ = published_file
    tampered = CovertypeFile(remote.url, remote.filename, "0" * 64, remote.rows)
    data_dir = _data_dir_with_sample(tmp_path)
    with pytest.raises(ValueError, match="does not match the known hash"):
        load_covertype("full", data_dir=data_dir, full=tampered)
    assert _files_in(data_dir) == {SAMPLE_DATASET.filename}, "neither the file nor a partial one is kept"


def test_a_tampered_sample_is_refused(tmp_path):
    data_dir = _data_dir_with_sample(tmp_path)
    sample = data_dir / SAMPLE_DATASET.filename
    sample.write_bytes(sample.read_bytes()[:-1])
    with pytest.raises(ChecksumError, match="differs from the published"):
        load_covertype("sample", data_dir=data_dir)


def test_offline_auto_falls_back_to_the_sample_with_one_log_line(tmp_path, caplog):
    unreachable = CovertypeFile(
        f"http://127.0.0.1:{free_port()}/covtype.data.gz", "covtype.data.gz", "0" * 64, 1
    )
    with caplog.at_level(logging.WARNING, logger="covertype.data.source"):
        frame = load_covertype("auto", data_dir=_data_dir_with_sample(tmp_path), full=unreachable)
    assert len(frame) == SAMPLE_DATASET.rows
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "using the shipped 15,000-row sample" in warnings[0]


def test_full_without_network_fails_loudly(tmp_path):
    unreachable = CovertypeFile(
        f"http://127.0.0.1:{free_port()}/covtype.data.gz", "covtype.data.gz", "0" * 64, 1
    )
    with pytest.raises(OSError, match="Connection refused"):
        load_covertype("full", data_dir=_data_dir_with_sample(tmp_path), full=unreachable)
