"""The Covertype app: predict with the champion, score a batch, inspect the model and the collected data,
and watch and steer the services (Control)."""

from pathlib import Path

import streamlit as st

from covertype.config import load_settings

VIEWS = Path(__file__).parent / "views"
settings = load_settings()

st.set_page_config(page_title="Covertype", page_icon=":evergreen_tree:", layout="wide")
page = st.navigation(
    [
        st.Page(VIEWS / "predict.py", title="Predict", icon=":material/forest:", default=True),
        st.Page(VIEWS / "batch.py", title="Batch", icon=":material/table:"),
        st.Page(VIEWS / "model.py", title="Model", icon=":material/model_training:"),
        st.Page(VIEWS / "data.py", title="Data", icon=":material/database:"),
        st.Page(VIEWS / "drift.py", title="Drift", icon=":material/monitoring:"),
        st.Page(VIEWS / "control.py", title="Control", icon=":material/tune:"),
    ]
)
with st.sidebar:
    st.caption(f"Prediction service: `{settings.service_url}`")
    st.caption(f"MLflow registry: `{settings.registry_uri}`")
page.run()
