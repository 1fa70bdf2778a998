"""Data: what ingestion stored per batch, the classes per batch and how features drift between batches."""

import numpy as np
import pandas as pd
import streamlit as st

from covertype.config import load_settings
from covertype.data.schema import COVER_TYPE_NAMES, NUMERIC_COLUMNS, TARGET_COLUMN
from covertype.drift import compare
from covertype.ui.sources import Sources, Unavailable

sources = Sources(load_settings())


@st.cache_data(ttl=60, show_spinner="Reading the raw store...")
def load_raw() -> pd.DataFrame:
    return sources.raw_store()


st.title("Collected data")
try:
    raw = load_raw()
except Unavailable as problem:
    st.error(str(problem))
    st.stop()
if raw.empty:
    st.info("The raw store is empty: no batch was collected yet.")
    st.stop()

groups = sorted(raw["group_number"].unique())
group = st.selectbox("Group", groups) if len(groups) > 1 else groups[0]
rows = raw.loc[raw["group_number"] == group]
batches = sorted(rows["batch_number"].unique())

st.subheader("Rows stored per batch")
st.bar_chart(rows.groupby("batch_number").size().rename("rows"), x_label="batch", y_label="rows")

st.subheader("Cover types per batch")
classes = pd.crosstab(rows["batch_number"], rows[TARGET_COLUMN].map(COVER_TYPE_NAMES), normalize="index")
st.bar_chart(classes, x_label="batch", y_label="share of rows")

st.subheader("Drift between two batches")
if len(batches) < 2:
    st.info("Drift needs at least two collected batches.")
    st.stop()
pick = st.columns(3)
reference_batch = pick[0].selectbox("Reference batch", batches, index=0)
current_batch = pick[1].selectbox("Compared batch", batches, index=len(batches) - 1)
feature = pick[2].selectbox("Feature", NUMERIC_COLUMNS)
reference = rows.loc[rows["batch_number"] == reference_batch]
current = rows.loc[rows["batch_number"] == current_batch]
table = compare(reference, current)
st.dataframe(table.sort_values("drifted", ascending=False), hide_index=True)
st.caption(
    "The monitoring pipeline's tests (the Drift page), with the first batch as the reference: "
    "p-value tests fire below their threshold, distances at or above it."
)
edges = np.histogram_bin_edges(pd.concat([reference[feature], current[feature]]).astype(float), bins=30)
histogram = pd.DataFrame(
    {
        f"batch {reference_batch}": np.histogram(reference[feature].astype(float), bins=edges)[0]
        / len(reference),
        f"batch {current_batch}": np.histogram(current[feature].astype(float), bins=edges)[0] / len(current),
    },
    index=pd.Index(((edges[:-1] + edges[1:]) / 2).round(), name=feature),
)
st.line_chart(histogram, y_label="share of rows")
