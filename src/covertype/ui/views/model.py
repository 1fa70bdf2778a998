"""Model: the champion the service answers with, every registered version's metrics, its confusion matrix."""

import streamlit as st

from covertype.config import load_settings
from covertype.ui.sources import Sources, Unavailable

#: The metrics training logs for every candidate and decides promotion on; the table has them all.
HEADLINE_METRICS = ("test_accuracy", "test_macro_f1")
sources = Sources(load_settings())

st.title("The champion model")

try:
    info = sources.model_info()
except Unavailable as problem:
    info = None
    st.warning(str(problem))
else:
    columns = st.columns(4)
    columns[0].metric(
        "Serving", f"{info['name']} v{info['version']}", help=f"aliases @{', @'.join(info['aliases'])}"
    )
    for column, metric in zip(columns[1:3], HEADLINE_METRICS, strict=True):
        value = info["metrics"].get(metric)
        column.metric(metric.replace("_", " "), "n/a" if value is None else f"{value:.3f}")
    columns[3].metric("Registered", info["registered_at"][:10], help=f"{info['registered_at']} (UTC)")
    st.caption(
        f"Run `{info['run_id']}` · loaded by the service at {info['loaded_at'][:19].replace('T', ' ')} UTC"
        + (f" · promoted at {info['promoted_at'][:19].replace('T', ' ')} UTC" if info["promoted_at"] else "")
    )
    if info["tags"]:
        with st.expander("Version tags: the promotion decision and the training data"):
            st.json(info["tags"])

st.subheader("Version history")
try:
    history = sources.version_history()
except Unavailable as problem:
    st.error(str(problem))
else:
    metrics = [metric for metric in HEADLINE_METRICS if metric in history.columns]
    if len(history) > 1 and metrics:
        st.line_chart(history.set_index("version")[metrics], x_label="model version", y_label="test score")
    else:
        st.caption(
            "One registered version so far: the chart of metrics over versions starts with the second."
        )
    st.dataframe(history, hide_index=True)
    champion = history.loc[history["champion"]]
    run_id = info["run_id"] if info else (champion["run_id"].iloc[0] if len(champion) else None)
    st.subheader("Confusion matrix on the test split")
    try:
        image = sources.confusion_matrix_image(run_id) if run_id else None
    except Unavailable as problem:
        st.error(str(problem))
    else:
        if image is None:
            st.info("The champion's training run logged no confusion matrix.")
        else:
            st.image(image, caption=f"run {run_id}", width=560)
