"""Kedro project settings: the defaults, plus the environment variables resolver for the catalog."""

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Service addresses come from the environment (containers, CI), so the catalog may read it too;
    # Kedro allows ``oc.env`` only in credentials by default.
    "custom_resolvers": {"oc.env": oc.env},
    # A run environment's parameters refine base's key by key (conf/stack/parameters_training.yml sets
    # the search budget only); catalogs and credentials keep Kedro's default, whole-key replacement.
    "merge_strategy": {"parameters": "soft"},
}
