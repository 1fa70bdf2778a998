"""Training pipeline: fingerprint -> decide -> search -> fit -> score, convert for serving -> decide the
promotion -> register -> report.

Kedro runs every node of a pipeline, and a separate ``train`` pipeline would put the decision in
every runner (``kedro run``, the demo, the Airflow DAG). So whether to train is decided once, as
data: ``decide_training`` plans the families to search, all of them or none. An empty plan flows
through the challenger branch as nothing: no trial, an empty challenger (Kedro passes no None
between nodes), no challenger scores, so no ``test_*`` metrics; the promotion decision is then
``skipped`` and the registry only tags the run. The nodes after the decision read what they are
given, not a flag. Whatever the decision, the run then reports the model that serves after it (the
challenger if promoted, else the standing champion) on its test split: ``champion.test_*`` and the
``evaluation/`` artifacts.
"""

from kedro.pipeline import Pipeline, node

from covertype.pipelines.training.nodes import (
    as_metrics,
    convert_challenger,
    decide_promotion,
    decide_training,
    fingerprint_training,
    fit_challenger,
    plot_confusion_matrix,
    prepare_registration,
    rank_feature_importances,
    score_challenger,
    score_champion,
    score_model,
    search_hyperparameters,
    search_metrics,
    select_served_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                fingerprint_training,
                inputs=["features_train", "features_test", "params:training"],
                outputs="training_fingerprint",
                name="fingerprint_training",
            ),
            node(
                decide_training,
                inputs={
                    "features_train": "features_train",
                    "features_test": "features_test",
                    "model_registry": "model_registry",
                    "drift_reports": "drift_reports",
                    "training_fingerprint": "training_fingerprint",
                    "min_new_rows": "params:training.min_new_rows",
                    "retrain_on_drift": "params:training.retrain_on_drift",
                    "spaces": "params:training.search.spaces",
                },
                outputs="training_plan",
                name="decide_training",
            ),
            node(
                search_hyperparameters,
                inputs=["features_train", "training_plan", "params:training.search"],
                outputs="search_results",
                name="search_hyperparameters",
            ),
            node(search_metrics, inputs="search_results", outputs="cv_macro_f1", name="log_search_metrics"),
            node(
                fit_challenger,
                inputs=[
                    "features_train",
                    "search_results",
                    "params:training.search.seed",
                    "params:training.model_size_budget_mb",
                    "params:training.fit_max_rows",
                ],
                outputs="challenger",
                name="fit_challenger",
            ),
            node(
                score_challenger,
                inputs=["challenger", "features_test"],
                outputs="challenger_scores",
                name="score_challenger",
            ),
            node(
                as_metrics,
                inputs="challenger_scores",
                outputs="challenger_metrics",
                name="log_challenger_metrics",
            ),
            node(
                convert_challenger,
                inputs=[
                    "challenger",
                    "features_test",
                    "params:training.serving_engine",
                    "params:training.model_size_budget_mb",
                ],
                outputs="challenger_engine",
                name="convert_challenger",
            ),
            node(
                score_champion,
                inputs=["model_registry", "features_test"],
                outputs="champion_scores",
                name="score_champion",
            ),
            node(
                decide_promotion,
                inputs={
                    "training_plan": "training_plan",
                    "challenger": "challenger",
                    "challenger_scores": "challenger_scores",
                    "champion_scores": "champion_scores",
                    "promotion": "params:training.promotion",
                    "model_size_budget_mb": "params:training.model_size_budget_mb",
                },
                outputs="promotion_decision",
                name="decide_promotion",
            ),
            node(
                prepare_registration,
                inputs={
                    "challenger": "challenger",
                    "challenger_engine": "challenger_engine",
                    "promotion_decision": "promotion_decision",
                    "training_plan": "training_plan",
                    "challenger_scores": "challenger_scores",
                    "features_test": "features_test",
                    "retention": "params:training.retention",
                },
                outputs="model_registration",
                name="register_challenger",
            ),
            node(
                select_served_model,
                inputs=["promotion_decision", "challenger", "model_registry"],
                outputs="served_model",
                name="select_served_model",
            ),
            node(
                score_model,
                inputs=["served_model", "features_test"],
                outputs="served_scores",
                name="score_served_model",
            ),
            node(as_metrics, inputs="served_scores", outputs="champion", name="log_champion_metrics"),
            node(
                plot_confusion_matrix,
                inputs=["served_model", "features_test"],
                outputs="confusion_matrix",
                name="plot_confusion_matrix",
            ),
            node(
                rank_feature_importances,
                inputs=["served_model", "features_test", "params:training.search.seed"],
                outputs="feature_importances",
                name="rank_feature_importances",
            ),
        ]
    )
