"""The one feature transformation: used by the feature_engineering pipeline and inside the served model.

It is the first step of every logged model, so a record is turned into features by the same code
in training and in serving, and the two cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from covertype.data.schema import FEATURE_COLUMNS, NUMERIC_COLUMNS, SOIL_TYPES, WILDERNESS_AREAS

WILDERNESS_FEATURES: tuple[str, ...] = tuple(f"Wilderness_{name}" for name in WILDERNESS_AREAS)
SOIL_FEATURES: tuple[str, ...] = tuple(f"Soil_{code}" for code in SOIL_TYPES)
#: Known to separate the cover types better than the raw distances (the water table's elevation,
#: distances combined from hydrology, roads and fire points, the soil's climatic/geologic zone).
DERIVED_FEATURES: tuple[str, ...] = (
    "Soil_Climatic_Zone",
    "Soil_Geologic_Zone",
    "Distance_To_Hydrology",
    "Elevation_Of_Hydrology",
    "Elevation_Minus_Scaled_Horizontal_Hydrology",
    "Hydrology_Plus_Fire_Points",
    "Hydrology_Minus_Fire_Points",
    "Hydrology_Plus_Roadways",
    "Hydrology_Minus_Roadways",
    "Fire_Points_Plus_Roadways",
    "Fire_Points_Minus_Roadways",
)
#: What the classifier sees, in this order.
MODEL_FEATURES: tuple[str, ...] = (*NUMERIC_COLUMNS, *WILDERNESS_FEATURES, *SOIL_FEATURES, *DERIVED_FEATURES)
#: The same features in the feature tables, prefixed so they sit beside the raw columns they share names with.
STORED_FEATURES: tuple[str, ...] = tuple(f"feature_{name}" for name in MODEL_FEATURES)


def _one_hot(values: pd.Series, codes: tuple[str, ...], names: tuple[str, ...]) -> pd.DataFrame:
    """Indicator columns for known codes; an unknown code sets none of them."""
    text = values.astype("string").fillna("").to_numpy(dtype=object)
    indicators = (text[:, None] == np.asarray(codes, dtype=object)[None, :]).astype("float64")
    return pd.DataFrame(indicators, columns=list(names), index=values.index)


def _soil_zone_digit(soil: pd.Series, position: int) -> pd.Series:
    """A digit of the soil's ELU code ("C7745": climatic zone 7, geologic zone 7); NaN if unknown."""
    known = soil.astype("string").where(soil.isin(SOIL_TYPES))
    return pd.to_numeric(known.str[position], errors="coerce").astype("float64")


class CovertypeFeatures(TransformerMixin, BaseEstimator):
    """The 12 raw record columns (as the batch API serves them, typed) -> the model's numeric features.

    Stateless: fitting only checks the columns, so the transformation of a record never depends on
    the data a model was trained on. Missing numbers become NaN, which the tree models accept.
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> CovertypeFeatures:
        self._check_columns(X)
        self.feature_names_in_ = np.asarray(FEATURE_COLUMNS, dtype=object)
        self.n_features_in_ = len(FEATURE_COLUMNS)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_columns(X)
        numbers = X.loc[:, list(NUMERIC_COLUMNS)].astype("float64")
        hydrology_h = numbers["Horizontal_Distance_To_Hydrology"]
        hydrology_v = numbers["Vertical_Distance_To_Hydrology"]
        fire = numbers["Horizontal_Distance_To_Fire_Points"]
        road = numbers["Horizontal_Distance_To_Roadways"]
        derived = pd.DataFrame(
            {
                "Soil_Climatic_Zone": _soil_zone_digit(X["Soil_Type"], 1),
                "Soil_Geologic_Zone": _soil_zone_digit(X["Soil_Type"], 2),
                "Distance_To_Hydrology": np.hypot(hydrology_h, hydrology_v),
                "Elevation_Of_Hydrology": numbers["Elevation"] - hydrology_v,
                "Elevation_Minus_Scaled_Horizontal_Hydrology": numbers["Elevation"] - 0.2 * hydrology_h,
                "Hydrology_Plus_Fire_Points": hydrology_h + fire,
                "Hydrology_Minus_Fire_Points": (hydrology_h - fire).abs(),
                "Hydrology_Plus_Roadways": hydrology_h + road,
                "Hydrology_Minus_Roadways": (hydrology_h - road).abs(),
                "Fire_Points_Plus_Roadways": fire + road,
                "Fire_Points_Minus_Roadways": (fire - road).abs(),
            },
            index=X.index,
        )
        return pd.concat(
            [
                numbers,
                _one_hot(X["Wilderness_Area"], WILDERNESS_AREAS, WILDERNESS_FEATURES),
                _one_hot(X["Soil_Type"], SOIL_TYPES, SOIL_FEATURES),
                derived,
            ],
            axis=1,
        )

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(MODEL_FEATURES, dtype=object)

    @staticmethod
    def _check_columns(X: pd.DataFrame) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"expected a DataFrame of the columns {list(FEATURE_COLUMNS)}, got {type(X)}")
        missing = [column for column in FEATURE_COLUMNS if column not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
