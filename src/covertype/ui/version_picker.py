"""The version picker of the Predict and Batch pages, and the line that says which version answered."""

from __future__ import annotations

from typing import Any

import streamlit as st

from covertype.ui.sources import Sources, Unavailable

#: The picker's first choice: no selector, so the service answers with the champion it follows.
CHAMPION = None


def _choice_label(version: dict[str, Any]) -> str:
    aliases = f" @{', @'.join(version['aliases'])}" if version["aliases"] else ""
    accuracy = version["test_metrics"].get("test_accuracy")
    score = f" · test accuracy {accuracy:.3f}" if accuracy is not None else ""
    return f"Version {version['version']}{aliases}{score}"


def version_picker(sources: Sources) -> str | None:
    """A select box of the service's versions, the champion first: the ``model`` selector, or None."""
    try:
        versions = sources.served_versions()
    except Unavailable as problem:
        versions = []
        st.caption(f"Only the champion can be picked: {problem}")
    labels = {version["version"]: _choice_label(version) for version in versions}
    # Version numbers as the options: a choice stays put when a newer version is registered meanwhile.
    return st.selectbox(
        "Model version",
        [CHAMPION, *labels],
        format_func=lambda number: "The champion (default)" if number is CHAMPION else labels[number],
        key="model",
    )


def answered_by(predictions: list[dict[str, Any]]) -> str:
    """ "version 3 (@champion)", or every version when the champion moved during a batch."""
    answered = {prediction["model_version"]: prediction["model_aliases"] for prediction in predictions}
    return ", ".join(
        f"version {number}" + (f" (@{', @'.join(aliases)})" if aliases else "")
        for number, aliases in answered.items()
    )
