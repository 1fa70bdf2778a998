"""The record contract of UCI Covertype: every field's name, rule and unit, written once for the project.

Ingestion's quarantine, feature engineering's pandera schema and the service's request model are all
built from ``RECORD_CONTRACT``; the column names below are read from it too.

Source: the UCI description (Blackard, 1998) and the course batch API's 13-column form
(see data/01_raw/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Wilderness_Area1..4 in the 55-column form -> the names the batch API serves.
WILDERNESS_AREAS: tuple[str, ...] = ("Rawah", "Neota", "Commanche", "Cache")

#: Soil_Type1..40 -> the USFS ELU code; the batch API serves "C" + code.
#: First digit: climatic zone; second digit: geologic zone.
SOIL_ELU_CODES: tuple[int, ...] = (
    2702, 2703, 2704, 2705, 2706, 2717, 3501, 3502, 4201, 4703,
    4704, 4744, 4758, 5101, 5151, 6101, 6102, 6731, 7101, 7102,
    7103, 7201, 7202, 7700, 7701, 7702, 7709, 7710, 7745, 7746,
    7755, 7756, 7757, 7790, 8703, 8707, 8708, 8771, 8772, 8776,
)  # fmt: skip
SOIL_TYPES: tuple[str, ...] = tuple(f"C{code}" for code in SOIL_ELU_CODES)

#: Cover_Type 1..7 -> the tree species it names.
COVER_TYPE_NAMES: dict[int, str] = {
    1: "Spruce/Fir",
    2: "Lodgepole Pine",
    3: "Ponderosa Pine",
    4: "Cottonwood/Willow",
    5: "Aspen",
    6: "Douglas-fir",
    7: "Krummholz",
}


@dataclass(frozen=True)
class FieldRule:
    """What one field of a record must hold: a whole number within ``bounds`` or one of ``codes``.

    ``kind`` is ``integer`` for a measurement, ``code`` for a coded category and ``label`` for the
    class to learn, which the service does not take.
    """

    name: str
    kind: Literal["integer", "code", "label"]
    description: str
    #: Inclusive (low, high) for integers and the label.
    bounds: tuple[int, int] | None = None
    #: The accepted values of a code field.
    codes: tuple[str, ...] = ()


#: Every field of a record, in the order the batch API serves them.
RecordContract = tuple[FieldRule, ...]

#: The 13 fields of the batch API. Bounds are the physical limits of the study area (Roosevelt
#: National Forest, Colorado), wider than the data seen.
RECORD_CONTRACT: RecordContract = (
    FieldRule("Elevation", "integer", "metres", bounds=(0, 4500)),
    FieldRule("Aspect", "integer", "degrees azimuth", bounds=(0, 360)),
    FieldRule("Slope", "integer", "degrees", bounds=(0, 90)),
    FieldRule("Horizontal_Distance_To_Hydrology", "integer", "metres", bounds=(0, 20000)),
    FieldRule("Vertical_Distance_To_Hydrology", "integer", "metres", bounds=(-2000, 2000)),
    FieldRule("Horizontal_Distance_To_Roadways", "integer", "metres", bounds=(0, 20000)),
    FieldRule("Hillshade_9am", "integer", "index 0..255", bounds=(0, 255)),
    FieldRule("Hillshade_Noon", "integer", "index 0..255", bounds=(0, 255)),
    FieldRule("Hillshade_3pm", "integer", "index 0..255", bounds=(0, 255)),
    FieldRule("Horizontal_Distance_To_Fire_Points", "integer", "metres", bounds=(0, 20000)),
    FieldRule("Wilderness_Area", "code", "wilderness area name", codes=WILDERNESS_AREAS),
    FieldRule("Soil_Type", "code", "USFS ELU soil code, C + four digits", codes=SOIL_TYPES),
    FieldRule(
        "Cover_Type", "label", "tree cover class", bounds=(min(COVER_TYPE_NAMES), max(COVER_TYPE_NAMES))
    ),
)

NUMERIC_COLUMNS: tuple[str, ...] = tuple(rule.name for rule in RECORD_CONTRACT if rule.kind == "integer")
CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(rule.name for rule in RECORD_CONTRACT if rule.kind == "code")
TARGET_COLUMN: str = next(rule.name for rule in RECORD_CONTRACT if rule.kind == "label")

#: The 13 columns the course batch API serves, as strings, in this order.
API_COLUMNS: tuple[str, ...] = tuple(rule.name for rule in RECORD_CONTRACT)
#: The 12 features of one record (numbers, then codes), in the order the batch API serves them.
FEATURE_COLUMNS: tuple[str, ...] = tuple(rule.name for rule in RECORD_CONTRACT if rule.kind != "label")

#: The 55 columns of the common one-hot CSV (UCI's covtype.data has them without a header).
ONE_HOT_WILDERNESS_COLUMNS: tuple[str, ...] = tuple(
    f"Wilderness_Area{i}" for i in range(1, len(WILDERNESS_AREAS) + 1)
)
ONE_HOT_SOIL_COLUMNS: tuple[str, ...] = tuple(f"Soil_Type{i}" for i in range(1, len(SOIL_TYPES) + 1))
ONE_HOT_COLUMNS: tuple[str, ...] = (
    *NUMERIC_COLUMNS,
    *ONE_HOT_WILDERNESS_COLUMNS,
    *ONE_HOT_SOIL_COLUMNS,
    TARGET_COLUMN,
)
