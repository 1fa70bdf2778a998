"""Control: each service's state with the reason, our group's batch at the batch API, and two actions."""

import pandas as pd
import streamlit as st

from covertype.config import load_settings
from covertype.stack.probe import State
from covertype.ui.sources import Sources, Unavailable

settings = load_settings()
sources = Sources(settings)

st.title("Control")

st.subheader("Services")
rows = sources.service_health()
st.dataframe(
    pd.DataFrame(
        [
            {
                "service": row.service,
                "state": str(row.health.state),
                "address": row.address,
                "reason": row.health.reason,
            }
            for row in rows
        ]
    ),
    hide_index=True,
)
not_up = [row.service for row in rows if row.health.state is not State.UP]
if not_up:
    st.warning(
        f"Not up: {', '.join(not_up)}. The reason column says why; `make check-stack` probes the same."
    )
else:
    st.caption("Every configured service answers its health check (the probes of `make check-stack`).")

if not settings.batch_api_url:
    st.subheader("Batch API")
    st.caption(
        "No batch API is configured: set COVERTYPE_BATCH_API_URL to see our group's batch and rotation."
    )
else:
    st.subheader(f"Batch API: group {settings.group_number}")
    try:
        position = sources.batch_position()
    except Unavailable as problem:
        st.info(str(problem))
    else:
        if position.state is None:
            st.info(
                f"Group {position.group_number} has not been served yet: its first /data call starts batch 1 "
                f"(then a new batch every {position.min_update_seconds:g} s)."
            )
        else:
            state = position.state
            current, rotation = st.columns(2)
            current.metric("Current batch", f"{state.batch_number} of {position.batches}")
            if state.finished:
                rotation.metric("Next rotation", "none: all collected")
            elif state.seconds_to_next_batch > 0:
                rotation.metric("Next rotation in", f"{state.seconds_to_next_batch:.0f} s")
            else:
                rotation.metric("Next rotation", "due: at the next /data call")

st.subheader("Actions")
reload_column, dag_column = st.columns(2)
if reload_column.button("Reload the champion", key="reload", help="POST /reload to the prediction service"):
    try:
        answer = sources.reload_service()
    except Unavailable as problem:
        reload_column.error(str(problem))
    else:
        (reload_column.success if answer["reloaded"] else reload_column.info)(answer["message"])
if settings.airflow_url:
    if dag_column.button("Trigger a DAG run", key="trigger", help=f"Airflow at {settings.airflow_url}"):
        try:
            run_id = sources.trigger_dag_run()
        except Unavailable as problem:
            dag_column.error(str(problem))
        else:
            dag_column.success(f"Airflow queued the run `{run_id}`.")
else:
    dag_column.caption("No Airflow is configured: set COVERTYPE_AIRFLOW_URL to trigger the DAG from here.")
