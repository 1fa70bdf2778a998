"""Monitoring pipeline: reference -> batch and served-traffic drift reports -> stores, MLflow, Pushgateway."""

from kedro.pipeline import Pipeline, node

from covertype.pipelines.monitoring.nodes import (
    alert_metrics,
    combine_reports,
    drift_metrics,
    report_batch_drift,
    report_document,
    report_page,
    report_served_drift,
    select_latest_batch,
    select_reference,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                select_reference,
                inputs=[
                    "raw_covertype@query",
                    "registered_versions",
                    "params:monitoring.reference",
                    "params:feature_engineering.test_fraction",
                ],
                outputs=["drift_reference", "drift_reference_info"],
                name="select_drift_reference",
            ),
            node(
                select_latest_batch,
                inputs=["raw_covertype@query", "params:monitoring.group_number"],
                outputs="latest_batch",
                name="select_latest_batch",
            ),
            node(
                report_batch_drift,
                inputs=["latest_batch", "drift_reference", "drift_reference_info", "params:monitoring.drift"],
                outputs=["batch_drift_report", "batch_drift_fields"],
                name="report_batch_drift",
            ),
            node(
                report_served_drift,
                inputs=[
                    "prediction_log",
                    "drift_reference",
                    "drift_reference_info",
                    "params:monitoring.drift",
                    "params:monitoring.served",
                ],
                outputs=["served_drift_reports", "served_drift_fields"],
                name="report_served_drift",
            ),
            node(
                combine_reports,
                inputs=[
                    "batch_drift_report",
                    "batch_drift_fields",
                    "served_drift_reports",
                    "served_drift_fields",
                ],
                outputs=["drift_reports", "drift_fields"],
                name="store_drift_reports",
            ),
            node(
                drift_metrics,
                inputs=["drift_reports", "drift_fields"],
                outputs="drift",
                name="log_drift_metrics",
            ),
            node(
                report_document,
                inputs=["drift_reports", "drift_fields"],
                outputs="drift_report_json",
                name="write_drift_report_json",
            ),
            node(
                report_page,
                inputs=["drift_reports", "drift_fields"],
                outputs="drift_report_html",
                name="write_drift_report_html",
            ),
            node(
                alert_metrics,
                inputs="drift_reports",
                outputs="drift_alert_metrics",
                name="push_drift_metrics",
            ),
        ]
    )
