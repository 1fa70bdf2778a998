"""Drift reports: the latest ingested batch and each window of served traffic against a reference.

The reference is the training split of a registered version (by default the champion's: the model
serving now), rebuilt from the raw store: its first ``training_rows`` distinct rows (the version's
tag; the store only grows and feature engineering keeps rows in arrival order) on the training
side of the hash split. Every report has the same form (``REPORT_TYPES``, ``FIELD_TYPES``), whatever
it judges; the tests are covertype.drift's.
"""

from __future__ import annotations

import hashlib
import html
import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from covertype.data.hashing import in_test_split
from covertype.data.schema import FEATURE_COLUMNS
from covertype.drift import FIELD_COLUMNS, DriftSettings, compare, verdict
from covertype.pipelines.feature_engineering.nodes import deduplicate_rows

logger = logging.getLogger(__name__)

#: One row per report: what was judged (a batch or a window of served traffic), against what, the verdict.
REPORT_TYPES = {
    "report_id": "string",
    "source": "string",
    "subject": "string",
    "group_number": "Int64",
    "batch_number": "Int64",
    "window_start": "datetime64[us, UTC]",
    "window_end": "datetime64[us, UTC]",
    "reference": "string",
    "reference_version": "string",
    "reference_rows": "int64",
    "rows": "int64",
    "fields": "int64",
    "drifted_fields": "int64",
    "drift_share": "float64",
    "share_threshold": "float64",
    "drifted": "bool",
    "computed_at": "datetime64[us, UTC]",
}
#: One row per report and field: the test chosen, its statistic, the threshold, the field's verdict.
FIELD_TYPES = {
    "row_key": "string",
    "report_id": "string",
    **dict.fromkeys(FIELD_COLUMNS, "string"),
    "statistic": "float64",
    "threshold": "float64",
    "drifted": "bool",
}


def select_reference(
    raw_rows: pd.DataFrame, registered_versions: pd.DataFrame, reference: dict[str, Any], test_fraction: float
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The training split of the version ``reference["model"]`` names (an alias or a number), and its name.

    No rows when no version answers to it (nothing promoted yet) or the version has no ``training_rows``.
    """
    selector = str(reference["model"])
    named = [
        version.version == selector or selector in str(version.aliases or "").split(",")
        for version in registered_versions.itertuples()
    ]
    matches = registered_versions[named]
    if matches.empty or pd.isna(matches["training_rows"].iloc[0]):
        logger.info(
            "No drift reference: no registered version answers to %r with its training rows", selector
        )
        return raw_rows.head(0).loc[:, list(FEATURE_COLUMNS)], {"name": "", "version": "", "rows": 0}
    version, trained_on = str(matches["version"].iloc[0]), int(matches["training_rows"].iloc[0])
    rows = deduplicate_rows(raw_rows).head(trained_on)
    training = rows.loc[~in_test_split(rows, FEATURE_COLUMNS, test_fraction), list(FEATURE_COLUMNS)]
    name = f"version {version} ({selector}): training split of its {trained_on:,} rows"
    logger.info("Drift reference: %s, %d rows", name, len(training))
    return training.reset_index(drop=True), {"name": name, "version": version, "rows": len(training)}


def select_latest_batch(raw_rows: pd.DataFrame, group_number: int) -> pd.DataFrame:
    """Every stored row the group's latest batch served (a row served again counts in its latest batch)."""
    rows = raw_rows[raw_rows["group_number"] == group_number]
    if rows.empty:
        return rows
    latest = rows["last_batch_number"].max()
    return rows[rows["last_batch_number"] == latest].reset_index(drop=True)


def _report_id(*parts: object) -> str:
    return "/".join(str(part) for part in parts)


def _report(
    report_id: str,
    current: pd.DataFrame,
    reference: pd.DataFrame,
    reference_info: dict[str, Any],
    settings: DriftSettings,
    **subject: Any,
) -> tuple[dict[str, Any], pd.DataFrame]:
    fields = compare(reference, current, settings)
    summary = verdict(fields, settings)
    report = {
        "report_id": report_id,
        **subject,
        "reference": reference_info["name"],
        "reference_version": reference_info["version"],
        "reference_rows": len(reference),
        "rows": len(current),
        **summary,
        "computed_at": datetime.now(UTC),
    }
    keys = [hashlib.sha256(f"{report_id}\x1f{name}".encode()).hexdigest()[:32] for name in fields["field"]]
    return report, fields.assign(row_key=keys, report_id=report_id)


def _frames(reports: list[tuple[dict[str, Any], pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reports and their fields as typed tables (typed when empty too: the first save makes the table)."""
    summaries = pd.DataFrame([report for report, _ in reports], columns=list(REPORT_TYPES))
    fields = pd.concat([fields for _, fields in reports]) if reports else pd.DataFrame()
    return (
        summaries.astype(REPORT_TYPES).reset_index(drop=True),
        fields.reindex(columns=list(FIELD_TYPES)).astype(FIELD_TYPES).reset_index(drop=True),
    )


def report_batch_drift(
    batch: pd.DataFrame, reference: pd.DataFrame, reference_info: dict[str, Any], drift: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The latest batch's report (one row) and its fields; none without a batch or a reference."""
    if batch.empty or reference.empty:
        return _frames([])
    group, number = int(batch["group_number"].iloc[0]), int(batch["last_batch_number"].iloc[0])
    report_id = _report_id("batch", f"g{group}", f"b{number}", f"v{reference_info['version']}")
    report = _report(
        report_id,
        batch,
        reference,
        reference_info,
        DriftSettings(**drift),
        source="batch",
        subject=f"group {group}, batch {number}",
        group_number=group,
        batch_number=number,
    )
    logger.info(
        "Drift of %s: %s", report[0]["subject"], {k: report[0][k] for k in ("drift_share", "drifted")}
    )
    return _frames([report])


def report_served_drift(
    prediction_log: pd.DataFrame,
    reference: pd.DataFrame,
    reference_info: dict[str, Any],
    drift: dict[str, Any],
    served: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One report per closed window of served traffic (the last ``lookback_windows``, each with at
    least ``min_rows`` records) against the reference; the open window waits until it closes."""
    if prediction_log.empty or reference.empty:
        return _frames([])
    width = pd.Timedelta(served["window"])
    now = pd.Timestamp.now(tz="UTC")
    starts = prediction_log["time"].dt.floor(width)
    closed = prediction_log.assign(window_start=starts)[starts + width <= now]
    settings = DriftSettings(**drift)
    windows = [
        (start, rows) for start, rows in closed.groupby("window_start") if len(rows) >= served["min_rows"]
    ]
    reports = []
    for start, rows in windows[-served["lookback_windows"] :]:
        end = start + width
        report_id = _report_id("served", start.strftime("%Y%m%dT%H%M%S"), f"{int(width.total_seconds())}s")
        reports.append(
            _report(
                f"{report_id}/v{reference_info['version']}",
                rows,
                reference,
                reference_info,
                settings,
                source="served",
                subject=f"served {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC",
                window_start=start,
                window_end=end,
            )
        )
    return _frames(reports)


def combine_reports(
    batch_reports: pd.DataFrame,
    batch_fields: pd.DataFrame,
    served_reports: pd.DataFrame,
    served_fields: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This run's reports, batch first, for the stores (appended: a report already stored stays as it is)."""
    return (
        pd.concat([batch_reports, served_reports], ignore_index=True).astype(REPORT_TYPES),
        pd.concat([batch_fields, served_fields], ignore_index=True).astype(FIELD_TYPES),
    )


def drift_metrics(reports: pd.DataFrame, fields: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """MLflow metrics (``drift.<source>.*``): each report's share, drifted fields and verdict, and each
    field's statistic; a batch's step is its number, a window's its start in epoch seconds."""
    metrics: dict[str, list[dict[str, float]]] = {}
    statistics = fields.set_index(["report_id", "field"])["statistic"]
    for report in reports.itertuples(index=False):
        step = int(report.batch_number) if report.source == "batch" else int(report.window_start.timestamp())
        values = {
            "drift_share": report.drift_share,
            "drifted_fields": report.drifted_fields,
            "drifted": float(report.drifted),
            **{f"statistic.{name}": value for name, value in statistics[report.report_id].items()},
        }
        for name, value in values.items():
            metrics.setdefault(f"{report.source}.{name}", []).append({"value": float(value), "step": step})
    return metrics


def _jsonable(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {key: value.isoformat() if isinstance(value, pd.Timestamp) else value for key, value in row.items()}
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records")
    ]


def report_document(reports: pd.DataFrame, fields: pd.DataFrame) -> dict[str, Any]:
    """This run's reports as one JSON document: each report with its fields."""
    by_report = {
        report_id: _jsonable(rows.drop(columns=["row_key", "report_id"]))
        for report_id, rows in fields.groupby("report_id")
    }
    return {
        "reports": [
            {**report, "fields": by_report.get(report["report_id"], [])} for report in _jsonable(reports)
        ]
    }


def report_page(reports: pd.DataFrame, fields: pd.DataFrame) -> str:
    """This run's reports as a self-contained HTML page: the verdict, then each field's test."""
    sections = []
    for report in reports.itertuples(index=False):
        verdict_text = "DRIFT" if report.drifted else "no drift"
        table = fields[fields["report_id"] == report.report_id].drop(columns=["row_key", "report_id"])
        sections.append(
            f"<h2>{html.escape(report.subject)}: {verdict_text}</h2>"
            f"<p>{report.drifted_fields} of {report.fields} fields drifted (share {report.drift_share:.2f}, "
            f"the dataset drifts from {report.share_threshold:.2f}); {report.rows:,} rows against the "
            f"reference {html.escape(report.reference)} ({report.reference_rows:,} rows).</p>"
            + table.to_html(index=False, float_format=lambda value: f"{value:.4g}", border=0)
        )
    body = (
        "".join(sections)
        or "<p>No report in this run: no new batch or closed window, or no reference yet.</p>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}</style>"
        f"</head><body><h1>Drift report</h1>{body}</body></html>"
    )


def alert_metrics(reports: pd.DataFrame) -> dict[str, Any]:
    """For the Pushgateway: the latest batch report's drift share, drifted fields and verdict, by group."""
    batches = reports[reports["source"] == "batch"]
    if batches.empty:
        return {}
    latest = batches.iloc[-1]
    return {
        "grouping_key": {"group_number": str(latest["group_number"])},
        "values": {
            "covertype_batch_drift_share": float(latest["drift_share"]),
            "covertype_batch_drifted_fields": float(latest["drifted_fields"]),
            "covertype_batch_drifted": float(latest["drifted"]),
            "covertype_batch_drift_batch_number": float(latest["batch_number"]),
        },
    }
