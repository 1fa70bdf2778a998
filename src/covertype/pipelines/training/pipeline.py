"""Training pipeline: plan -> search -> fit -> evaluate -> re-score the champion -> decide -> register."""

from kedro.pipeline import Pipeline, node

from covertype.pipelines.training.nodes import (
    champion_metrics,
    decide_promotion,
    evaluation_metrics,
    fit_candidate,
    plan_training,
    plot_confusion_matrix,
    prepare_registration,
    rank_feature_importances,
    score_champion,
    score_model,
    search_hyperparameters,
    search_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                plan_training,
                inputs=["features_train", "features_test", "model_registry", "params:training.min_new_rows"],
                outputs="training_plan",
                name="plan_training",
            ),
            node(
                search_hyperparameters,
                inputs=["features_train", "training_plan", "params:training.search"],
                outputs="best_candidate",
                name="search_hyperparameters",
            ),
            node(search_metrics, inputs="best_candidate", outputs="cv_macro_f1", name="log_search_metrics"),
            node(
                fit_candidate,
                inputs=["features_train", "best_candidate", "model_registry"],
                outputs="candidate_model",
                name="fit_candidate",
            ),
            node(
                score_model,
                inputs=["candidate_model", "features_test"],
                outputs="candidate_scores",
                name="score_candidate",
            ),
            node(
                evaluation_metrics,
                inputs="candidate_scores",
                outputs=["test_accuracy", "test_macro_f1", "test_roc_auc_ovr", "test_f1_class"],
                name="log_test_metrics",
            ),
            node(
                plot_confusion_matrix,
                inputs=["candidate_model", "features_test"],
                outputs="confusion_matrix",
                name="plot_confusion_matrix",
            ),
            node(
                rank_feature_importances,
                inputs=["candidate_model", "features_test", "params:training.search.seed"],
                outputs="feature_importances",
                name="rank_feature_importances",
            ),
            node(
                score_champion,
                inputs=["model_registry", "features_test"],
                outputs="champion_scores",
                name="score_champion",
            ),
            node(champion_metrics, inputs="champion_scores", outputs="champion", name="log_champion_metrics"),
            node(
                decide_promotion,
                inputs=["training_plan", "candidate_scores", "champion_scores", "params:training.promotion"],
                outputs="promotion_decision",
                name="decide_promotion",
            ),
            node(
                prepare_registration,
                inputs=[
                    "candidate_model",
                    "promotion_decision",
                    "training_plan",
                    "candidate_scores",
                    "features_test",
                ],
                outputs="model_registration",
                name="register_candidate",
            ),
        ]
    )
