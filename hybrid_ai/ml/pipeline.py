"""FreqAI data-pipeline pieces sized for a 2-core bot."""

from __future__ import annotations

from typing import Any

import numpy as np
from datasieve.transforms import DissimilarityIndex


class SampledDissimilarityIndex(DissimilarityIndex):
    """FreqAI's dissimilarity index (DI) measured against a fixed sample of training rows.

    The stock DI keeps every training row and computes all pairwise distances at fit time:
    O(n^2) memory (600 MB for a month of 5m candles) and seconds of CPU per training, and a
    joblib worker pool on every live prediction. A seeded sample of ``max_rows`` training
    rows estimates the same average distance and the same nearest-neighbour distances
    closely enough to flag outliers, in a fraction of the time, in-process.
    """

    def __init__(self, di_threshold: float = 1, max_rows: int = 2000, seed: int = 0,
                 **kwargs) -> None:
        super().__init__(di_threshold=di_threshold, n_jobs=1, **kwargs)
        self.max_rows = max_rows
        self.seed = seed

    def fit(self, X, y=None, sample_weight=None, feature_list=None, **kwargs):  # noqa: N803
        arr = np.asarray(X)
        if len(arr) > self.max_rows:
            idx = np.sort(np.random.default_rng(self.seed).choice(len(arr), self.max_rows,
                                                                  replace=False))
            arr = arr[idx]
        super().fit(arr, y, sample_weight, feature_list, **kwargs)
        return X, y, sample_weight, feature_list


def with_sampled_di(pipeline: Any, max_rows: int) -> Any:
    """FreqAI's pipeline (a datasieve ``Pipeline``) with its ``di`` step, if any, replaced by
    a ``SampledDissimilarityIndex`` of the same threshold on ``max_rows`` training rows."""
    pipeline.steps = [
        (name, SampledDissimilarityIndex(step.di_threshold, max_rows=max_rows))
        if name == "di" else (name, step)
        for name, step in pipeline.steps
    ]
    return pipeline


def di_dropped(pipeline: Any) -> int:
    """Rows the pipeline's dissimilarity filter dropped on its last transform (0 without
    one, or before any transform)."""
    di = dict(pipeline.steps).get("di")
    di_values = getattr(di, "di_values", None)
    return (int((np.asarray(di_values) >= di.di_threshold).sum())
            if di_values is not None and len(di_values) else 0)
