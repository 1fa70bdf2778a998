"""Kedro project settings: the defaults, plus resolvers for the environment and the project's settings."""

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from covertype.config import load_settings
from covertype.hooks import RunBookkeeping

# After kedro-mlflow's hook (plugins' hooks run first): tags and names the run it opened.
HOOKS = (RunBookkeeping(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Service addresses come from the environment (containers, CI), so the catalog may read it too;
    # Kedro allows ``oc.env`` only in credentials by default.
    # ``${settings:<field>}``: a value the processes outside Kedro read too (covertype.config), so
    # that training registers the model under the name and aliases the service and the UI look for.
    "custom_resolvers": {"oc.env": oc.env, "settings": lambda name: getattr(load_settings(), name)},
    # A run environment's parameters refine base's key by key (conf/stack/parameters_training.yml sets
    # the search budget only); catalogs and credentials keep Kedro's default, whole-key replacement.
    "merge_strategy": {"parameters": "soft"},
}
