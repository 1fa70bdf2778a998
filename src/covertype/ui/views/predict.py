"""Predict: one cell's 12 features in a form, the answer of the champion (or of a version picked), its
class probabilities, and why: each field's contribution to the answer (the service's ``/explain``)."""

import pandas as pd
import streamlit as st

from covertype.config import load_settings
from covertype.data.schema import RECORD_CONTRACT, SOIL_TYPES, WILDERNESS_AREAS
from covertype.ui.sources import Refused, Sources, Unavailable
from covertype.ui.version_picker import answered_by, version_picker

#: The shipped sample's medians (numbers) and most frequent codes: a realistic starting point.
TYPICAL_RECORD = {
    "Elevation": 2995,
    "Aspect": 128,
    "Slope": 13,
    "Horizontal_Distance_To_Hydrology": 218,
    "Vertical_Distance_To_Hydrology": 30,
    "Horizontal_Distance_To_Roadways": 1994,
    "Hillshade_9am": 218,
    "Hillshade_Noon": 226,
    "Hillshade_3pm": 143,
    "Horizontal_Distance_To_Fire_Points": 1699,
    "Wilderness_Area": "Commanche",
    "Soil_Type": "C7745",
}
#: Bounded angles and indices get sliders; open-ended distances get number inputs.
SLIDERS = {"Aspect", "Slope", "Hillshade_9am", "Hillshade_Noon", "Hillshade_3pm"}
#: The record contract the service validates with: each field's bounds and unit.
RULES = {rule.name: rule for rule in RECORD_CONTRACT}

sources = Sources(load_settings())


def label(name: str) -> str:
    return f"{name.replace('_', ' ')} ({RULES[name].description})"


st.title("Predict the forest cover type")
st.write(
    "Describe a 30 m x 30 m cell of the Roosevelt National Forest; the champion model (or the version "
    "you pick) names its tree cover."
)
model = version_picker(sources)

# The answer goes beside the form, where the eye is after pressing Predict, not below the fold.
form_column, answer_column = st.columns([3, 2], gap="large")
with form_column, st.form("predict"):
    record: dict[str, object] = {}
    columns = st.columns(2)
    numeric = [name for name in TYPICAL_RECORD if name not in ("Wilderness_Area", "Soil_Type")]
    for index, name in enumerate(numeric):
        low, high = RULES[name].bounds
        widget = columns[index % 2].slider if name in SLIDERS else columns[index % 2].number_input
        record[name] = widget(label(name), min_value=low, max_value=high, value=TYPICAL_RECORD[name], step=1)
    record["Wilderness_Area"] = columns[0].selectbox(
        "Wilderness area", WILDERNESS_AREAS, index=WILDERNESS_AREAS.index(TYPICAL_RECORD["Wilderness_Area"])
    )
    record["Soil_Type"] = columns[1].selectbox(
        "Soil type (USFS ELU code)", SOIL_TYPES, index=SOIL_TYPES.index(TYPICAL_RECORD["Soil_Type"])
    )
    submitted = st.form_submit_button("Predict", type="primary")

with answer_column:
    if not submitted:
        st.caption("The predicted cover type and each type's probability appear here.")
    else:
        try:
            (prediction,) = sources.predict([record], model=model)
        except (Unavailable, Refused) as problem:
            st.error(str(problem))
        else:
            st.success(
                f"Predicted cover type: **{prediction['cover_type_name']}** "
                f"(class {prediction['cover_type']}), answered by {answered_by([prediction])}"
            )
            probabilities = pd.Series(prediction["probabilities"], name="probability")
            st.metric("Confidence", f"{probabilities.max():.0%}")
            st.bar_chart(
                probabilities.rename_axis("cover type"),
                horizontal=True,
                sort=False,
                x_label="",
                y_label="probability",
            )
            st.subheader("Why this answer")
            try:
                explanation = sources.explain(record, model=model)
            except (Unavailable, Refused) as problem:
                st.warning(f"No explanation: {problem}")
            else:
                output = "probability" if explanation["output"] == "probability" else "raw score (log-odds)"
                st.caption(
                    f"Each field's contribution to the model's {output} of {explanation['cover_type_name']} "
                    f"(exact TreeSHAP): the model's average, {explanation['base_value']:.3f}, plus these "
                    f"contributions is this record's {explanation['value']:.3f}. Positive pushes toward "
                    f"{explanation['cover_type_name']}, negative away from it."
                )
                contributions = pd.Series(explanation["contributions"], name="contribution")
                st.bar_chart(
                    contributions.rename(index=lambda name: name.replace("_", " ")).rename_axis("field"),
                    horizontal=True,
                    sort="-contribution",
                    x_label="",
                    y_label="contribution",
                )
