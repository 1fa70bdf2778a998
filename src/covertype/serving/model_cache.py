"""The last champion the service loaded, kept in a local folder: what it serves when it starts while the
registry is unreachable (``Settings.model_cache_dir``; None keeps no cache).

Only a version the service itself loaded from the registry is stored (registration read it back and
checked it before the version existed), with the SHA-256 of its bytes: a cached model whose bytes do
not match is refused, so the cache never serves what was not verified. Files are replaced atomically:
a crash mid-write leaves the previous entry whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from covertype.model_package import CompressedModel
from covertype.serving.schema import ModelInfo

MODEL_FILE, INFO_FILE = "model.pkl", "model_info.json"


class CorruptCache(RuntimeError):
    """The cached model's bytes are not the ones stored with it."""


def _write_atomically(path: Path, content: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as part:
        part.write(content)
        part.flush()
        os.fsync(part.fileno())
    os.replace(part.name, path)


class ModelCache:
    """One cached champion in ``folder``: its compressed pickle and its ``ModelInfo``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def store(self, model: Any, info: ModelInfo) -> None:
        """Keep ``model`` (loaded from the registry as version ``info.version``) as the cached champion."""
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = pickle.dumps(CompressedModel(model), protocol=pickle.DEFAULT_PROTOCOL)
        entry = {"sha256": hashlib.sha256(payload).hexdigest(), "info": info.model_dump(mode="json")}
        # The model first: an info file always names bytes that are there (a crash between the two
        # leaves a new model with the old info, which the checksum refuses, not a wrong version served).
        _write_atomically(self.folder / MODEL_FILE, payload)
        _write_atomically(self.folder / INFO_FILE, json.dumps(entry).encode())

    def load(self) -> tuple[Any, ModelInfo] | None:
        """The cached model and its info; None when nothing is cached. ``CorruptCache`` on a mismatch."""
        try:
            entry = json.loads((self.folder / INFO_FILE).read_bytes())
            payload = (self.folder / MODEL_FILE).read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
            raise CorruptCache(f"the cached model in {self.folder} is not the one its info names; not served")
        return pickle.loads(payload), ModelInfo.model_validate(entry["info"])  # our own file, checksummed
