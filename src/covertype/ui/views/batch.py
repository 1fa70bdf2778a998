"""Batch: a CSV in the batch API's form, scored by the champion or a version picked, shown, downloadable."""

import pandas as pd
import streamlit as st

from covertype.config import load_settings
from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS, TARGET_COLUMN
from covertype.ui.sources import (
    EXAMPLE_ROWS_PER_CLASS,
    Refused,
    Sources,
    Unavailable,
    example_batch_csv,
    read_batch_csv,
)
from covertype.ui.version_picker import answered_by, version_picker

sources = Sources(load_settings())
example_batch = st.cache_data(example_batch_csv)


st.title("Score a batch")
st.write(
    f"Upload a CSV with the batch API's columns in its order ({', '.join(API_COLUMNS)}), with or "
    f"without a header; {TARGET_COLUMN} is optional and, when present, is compared with the predictions."
)
st.download_button(
    "Download an example file",
    example_batch(),
    file_name="covertype_example_batch.csv",
    mime="text/csv",
    help=f"{EXAMPLE_ROWS_PER_CLASS} real rows of each cover type from the shipped sample",
)
model = version_picker(sources)
upload = st.file_uploader("Batch CSV", type=["csv"])
if upload is not None:
    try:
        batch = read_batch_csv(upload)
        features = batch[list(FEATURE_COLUMNS)]
        records = features.astype(object).where(features.notna(), None).to_dict("records")
        predictions = sources.predict(records, model=model)
    except (Unavailable, Refused, ValueError) as problem:
        st.error(str(problem))
    else:
        scored = batch.assign(
            predicted_cover_type=[p["cover_type"] for p in predictions],
            predicted_name=[p["cover_type_name"] for p in predictions],
            confidence=[max(p["probabilities"].values()) for p in predictions],
            model_version=[p["model_version"] for p in predictions],
        )
        st.caption(f"Answered by {answered_by(predictions)}")
        summary = st.columns(3)
        summary[0].metric("Records", f"{len(scored):,}")
        summary[1].metric("Mean confidence", f"{scored['confidence'].mean():.0%}")
        if TARGET_COLUMN in scored:
            truth = pd.to_numeric(scored[TARGET_COLUMN], errors="coerce")
            summary[2].metric(
                "Accuracy against Cover_Type", f"{(truth == scored['predicted_cover_type']).mean():.1%}"
            )
        st.bar_chart(scored["predicted_name"].value_counts().rename("records"), horizontal=True)
        st.dataframe(scored, hide_index=True)
        st.download_button(
            "Download predictions (CSV)",
            scored.to_csv(index=False).encode(),
            file_name="covertype_predictions.csv",
            mime="text/csv",
        )
