"""Any registered version on request: ``predict``'s ``model`` selector, the loaded-version cache, the listing.

The champion the service follows answers by default and whenever a selector names it; any other
version is loaded on first request and kept in a small least-recently-used cache
(COVERTYPE_VERSION_CACHE_SIZE), so that switching between a few versions does not reload them.
A selector that names no version, or a version whose model cannot be loaded (its artifacts were
pruned, say), is refused naming the selector: 404 and 410, never a 5xx.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion

from covertype.registry import TRAINING_ROWS_TAG, ModelRegistry, UnknownVersion
from covertype.serving.champion import LoadedVersion, load_version
from covertype.serving.schema import ModelListing, VersionSummary

logger = logging.getLogger(__name__)


class VersionRefused(LookupError):
    """A selector the service cannot answer with: the HTTP status it gets, and a message naming it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class VersionCache:
    """At most ``capacity`` loaded versions by number; the least recently used one leaves first.

    One lock guards the cache and the loads, so two requests for a version load it once.
    """

    def __init__(self, capacity: int, load: Callable[[ModelVersion], LoadedVersion]) -> None:
        self.capacity = capacity
        self._load = load
        self._loaded: OrderedDict[str, LoadedVersion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: ModelVersion) -> LoadedVersion:
        """``version`` loaded (from the cache, or loaded now), named by the aliases it has now."""
        number = str(version.version)
        with self._lock:
            loaded = self._loaded.get(number)
            if loaded is None:
                loaded = self._load(version)
                self._loaded[number] = loaded
                while len(self._loaded) > self.capacity:
                    evicted, _ = self._loaded.popitem(last=False)
                    logger.info("version %s left the cache of %d versions", evicted, self.capacity)
            self._loaded.move_to_end(number)
        return loaded.with_aliases(version.aliases)

    @property
    def numbers(self) -> list[str]:
        """The cached version numbers, least recently used first."""
        with self._lock:
            return list(self._loaded)


class VersionSelector:
    """Which loaded version answers a request: the served champion, or the version a selector names."""

    def __init__(self, registry: ModelRegistry, cache_size: int) -> None:
        self.registry = registry
        self.cache = VersionCache(cache_size, self._load)

    def select(self, selector: str | None, champion: LoadedVersion | None) -> LoadedVersion | None:
        """The version for ``selector``; None when it is the champion and there is none yet (503).

        No selector, or the champion alias, is the served champion without a registry call. Any
        other selector is resolved now (aliases move); the champion's own version is not loaded twice.
        """
        if selector is None or selector == self.registry.champion_alias:
            return champion
        try:
            version = self.registry.resolve(selector)
        except UnknownVersion as unknown:
            raise VersionRefused(404, str(unknown)) from unknown
        if champion is not None and str(version.version) == champion.info.version:
            return champion.with_aliases(version.aliases)
        return self.cache.get(version)

    def _load(self, version: ModelVersion) -> LoadedVersion:
        try:
            return load_version(self.registry, version)
        except Exception as error:  # missing or pruned artifacts, storage or deserialisation failures
            logger.exception("version %s could not be loaded", version.version)
            raise VersionRefused(
                410,
                f"version {version.version} of {self.registry.model_name} is registered but its model "
                f"cannot be loaded ({type(error).__name__}: {error}); its artifacts may have been pruned. "
                "List the versions on GET /models",
            ) from error


def version_listing(registry: ModelRegistry) -> ModelListing:
    """Every registered version, newest first, with its aliases, training rows and test metrics."""
    aliases = registry.aliases()
    versions = registry.versions()
    summaries = [
        VersionSummary(
            version=str(version.version),
            aliases=aliases.get(str(version.version), []),
            run_id=version.run_id,
            training_rows=_rows(version),
            test_metrics={
                name: value
                for name, value in registry.run_metrics(version).items()
                if name.startswith("test_")
            },
            tags=dict(version.tags),
            registered_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
        )
        for version in versions
    ]
    champion = next(
        (summary.version for summary in summaries if registry.champion_alias in summary.aliases), None
    )
    return ModelListing(name=registry.model_name, champion=champion, versions=summaries)


def _rows(version: ModelVersion) -> int | None:
    rows = version.tags.get(TRAINING_ROWS_TAG, "")
    return int(rows) if rows.isdigit() else None
