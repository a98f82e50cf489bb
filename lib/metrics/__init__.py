"""Evaluation engine: ranking metrics (CMC, mAP, mINP), protocols, features and distances; restoration quality."""

from .aggregate import aggregate_splits, format_mean_std
from .features import DISTANCES, cosine_distance, distance_matrix, euclidean_distance, extract_features
from .ranking import evaluate_ranking, rank_query
from .restoration import image_quality, restoration_quality, restored_examples, to_uint8
from .single_shot import evaluate_single_shot, sample_single_shot_gallery

__all__ = [
    "evaluate_ranking",
    "rank_query",
    "evaluate_single_shot",
    "sample_single_shot_gallery",
    "aggregate_splits",
    "format_mean_std",
    "extract_features",
    "cosine_distance",
    "euclidean_distance",
    "DISTANCES",
    "distance_matrix",
    "to_uint8",
    "image_quality",
    "restoration_quality",
    "restored_examples",
]
