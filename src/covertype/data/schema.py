"""Column names and code tables of UCI Covertype, written once for every part of the project.

Source: the UCI description (Blackard, 1998) and the course batch API's 13-column form
(see data/01_raw/README.md).
"""

from __future__ import annotations

NUMERIC_COLUMNS: tuple[str, ...] = (
    "Elevation",
    "Aspect",
    "Slope",
    "Horizontal_Distance_To_Hydrology",
    "Vertical_Distance_To_Hydrology",
    "Horizontal_Distance_To_Roadways",
    "Hillshade_9am",
    "Hillshade_Noon",
    "Hillshade_3pm",
    "Horizontal_Distance_To_Fire_Points",
)
CATEGORICAL_COLUMNS: tuple[str, ...] = ("Wilderness_Area", "Soil_Type")
TARGET_COLUMN = "Cover_Type"

#: The 12 features of one record, in the order the batch API serves them.
FEATURE_COLUMNS: tuple[str, ...] = NUMERIC_COLUMNS + CATEGORICAL_COLUMNS
#: The 13 columns the course batch API serves, as strings, in this order.
API_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, TARGET_COLUMN)

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
