"""Model: the champion the service answers with, every registered version's metrics, its confusion matrix."""

import streamlit as st

from covertype.ui.sources import Unavailable, confusion_matrix_image, model_info, version_history

st.title("The champion model")

try:
    info = model_info()
except Unavailable as problem:
    info = None
    st.warning(str(problem))
else:
    columns = st.columns(4)
    columns[0].metric("Serving", f"{info['name']} v{info['version']}", help=f"alias @{info['alias']}")
    for column, metric in zip(columns[1:3], ("test_accuracy", "test_macro_f1"), strict=True):
        value = info["metrics"].get(metric)
        column.metric(metric.replace("_", " "), "n/a" if value is None else f"{value:.3f}")
    columns[3].metric("Registered", info["registered_at"][:16].replace("T", " "))
    st.caption(
        f"Run `{info['run_id']}` · loaded by the service at {info['loaded_at'][:19].replace('T', ' ')} UTC"
        + (f" · promoted at {info['promoted_at'][:19].replace('T', ' ')} UTC" if info["promoted_at"] else "")
    )
    if info["tags"]:
        st.json(info["tags"], expanded=False)

st.subheader("Version history")
try:
    history = version_history()
except Unavailable as problem:
    st.error(str(problem))
else:
    metrics = [column for column in history.columns if column.startswith("test_")]
    if metrics:
        st.line_chart(history.set_index("version")[metrics], x_label="model version")
    st.dataframe(history, hide_index=True)
    champion = history.loc[history["champion"]]
    run_id = info["run_id"] if info else (champion["run_id"].iloc[0] if len(champion) else None)
    st.subheader("Confusion matrix on the test split")
    try:
        image = confusion_matrix_image(run_id) if run_id else None
    except Unavailable as problem:
        st.error(str(problem))
    else:
        if image is None:
            st.info("The champion's training run logged no confusion matrix.")
        else:
            st.image(image, caption=f"run {run_id}", width=560)
