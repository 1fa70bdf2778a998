"""Drift: the monitoring pipeline's reports, per batch and per window of served traffic, field by field."""

import pandas as pd
import streamlit as st

from covertype.config import load_settings
from covertype.ui.sources import Sources, Unavailable

sources = Sources(load_settings())
SOURCES = {"batch": "Ingested batches", "served": "Served traffic"}


@st.cache_data(ttl=60, show_spinner="Reading the drift reports...")
def load_reports() -> tuple[pd.DataFrame, pd.DataFrame]:
    return sources.drift_reports()


st.title("Drift")
try:
    reports, fields = load_reports()
except Unavailable as problem:
    st.error(str(problem))
    st.stop()
if reports.empty:
    st.info(
        "No drift report yet. The monitoring pipeline reports each ingested batch once a champion is "
        "trained (`make demo`, the Airflow DAG or `kedro run`), and served traffic once the service "
        "has answered enough records in a closed window."
    )
    st.stop()

kinds = [kind for kind in SOURCES if kind in set(reports["source"])]
kind = st.radio("Reports on", kinds, format_func=SOURCES.get, horizontal=True)
chosen = reports[reports["source"] == kind].sort_values("id")
chosen = chosen.assign(label=chosen["subject"] + " (reference version " + chosen["reference_version"] + ")")

latest = chosen.iloc[-1]
st.subheader(f"Latest: {latest['subject']}")
columns = st.columns(4)
columns[0].metric("Verdict", "DRIFT" if latest["drifted"] else "no drift")
columns[1].metric("Drifted fields", f"{latest['drifted_fields']} of {latest['fields']}")
columns[2].metric(
    "Drift share", f"{latest['drift_share']:.2f}", help=f"drifts from {latest['share_threshold']:.2f}"
)
columns[3].metric("Rows judged", f"{latest['rows']:,}")
st.caption(f"Reference: {latest['reference']}, {latest['reference_rows']:,} rows.")

st.subheader("Drift share over time")
share = chosen.set_index("subject")[["drift_share", "share_threshold"]].rename(
    columns={"drift_share": "drift share", "share_threshold": "dataset drifts from"}
)
st.line_chart(share, y_label="share of the 12 fields")

st.subheader("Fields over time")
per_field = fields.merge(chosen[["report_id", "label"]]).astype({"drifted": bool})
drifted = per_field.pivot(index="field", columns="label", values="drifted")
st.dataframe(drifted.reindex(columns=chosen["label"]), use_container_width=True)
st.caption("True: the field's test fired in that report. A field that keeps firing has moved for good.")

st.subheader("One report, field by field")
label = st.selectbox("Report", chosen["label"][::-1])
report = chosen[chosen["label"] == label].iloc[0]
detail = fields[fields["report_id"] == report["report_id"]][
    ["field", "kind", "test", "statistic", "threshold", "drifted"]
]
st.dataframe(detail.sort_values("drifted", ascending=False), hide_index=True, use_container_width=True)
st.caption(
    "p-value tests (ks, chisquare, z) fire below their threshold; distances (wasserstein, "
    "jensenshannon) at or above it. See docs/how-to/read-a-drift-report.md."
)
