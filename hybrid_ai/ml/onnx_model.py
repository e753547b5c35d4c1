"""A LightGBM classifier exported to ONNX and served by onnxruntime.

``OnnxClassifier`` is what FreqAI stores (pickled by its data drawer): the ONNX bytes, the
class names, the feature names it was trained on and an optional Platt calibration. The
onnxruntime session is created lazily, once per object, and never pickled, so FreqAI's
save/load and live restarts work unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5
PROBA_OUTPUT = "probabilities"


class OnnxModelError(RuntimeError):
    """The ONNX model is missing, corrupt, inconsistent with its input, or fails parity."""


@dataclass
class Calibration:
    """Platt scaling of the positive-class probability: sigmoid(a * logit(p) + b)."""

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, p: npt.NDArray[np.float64], y: npt.NDArray[np.int_]) -> Calibration:
        """Fit on held-out probabilities; falls back to identity when it cannot help."""
        if len(np.unique(y)) < 2 or len(y) < 50:
            return cls()
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=200)
        lr.fit(_logit(p).reshape(-1, 1), y)
        return cls(a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))

    def apply(self, p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.a == 1.0 and self.b == 0.0:
            return p
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def float32_safe_booster(model: Any) -> Any:
    """The model's booster with every split threshold moved down to a float32 value.

    ONNX tree ensembles store thresholds as float32; LightGBM keeps doubles. For a float32
    input x and a double threshold t, ``x <= t`` equals ``x <= f`` where f is the largest
    float32 not above t (no float32 lies between f and t), so this booster computes exactly
    the same function on float32 inputs and its ONNX export no longer flips splits whose
    threshold falls between two float32 neighbours.
    """
    import lightgbm as lgb

    booster = model.booster_ if hasattr(model, "booster_") else model
    # tree_sizes (byte offsets for parallel parsing) would no longer match: drop it.
    lines = [ln for ln in booster.model_to_string().splitlines()
             if not ln.startswith("tree_sizes=")]
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            values = np.array(line.removeprefix("threshold=").split(), dtype=np.float64)
            f32 = values.astype(np.float32)
            above = f32.astype(np.float64) > values
            f32[above] = np.nextafter(f32[above], np.float32(-np.inf))
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in f32)
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def export_lightgbm(model: Any, n_features: int) -> bytes:
    """LightGBM (sklearn API or Booster) -> ONNX bytes, probabilities as a [N, 2] tensor."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    onnx_model = convert_lightgbm(
        float32_safe_booster(model),
        initial_types=[("input", FloatTensorType([None, n_features]))],
        zipmap=False,  # a tensor, not a list of dicts: ~10x faster to read
        target_opset=15,
    )
    return onnx_model.SerializeToString()


@dataclass
class OnnxClassifier:
    """sklearn-like classifier backed by onnxruntime."""

    onnx_bytes: bytes
    classes_: npt.NDArray[Any]
    feature_names: list[str]
    positive_class: str = "win"
    calibration: Calibration = field(default_factory=Calibration)
    threads: int = 1
    best_iteration: int | None = None
    _session: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None  # sessions are not picklable; rebuilt on first use
        return state

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = self._make_session()
        return self._session

    def _make_session(self) -> Any:
        import onnxruntime as ort

        if not self.onnx_bytes:
            raise OnnxModelError("the stored model holds no ONNX payload; retrain it")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # silence the per-call VerifyOutputSizes warning
        try:
            session = ort.InferenceSession(self.onnx_bytes, opts,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise OnnxModelError(f"the ONNX payload is corrupt ({exc}); retrain it") from exc
        n_inputs = session.get_inputs()[0].shape[1]
        if n_inputs != len(self.feature_names):
            raise OnnxModelError(
                f"the ONNX graph takes {n_inputs} features but the model lists "
                f"{len(self.feature_names)}; retrain it"
            )
        return session

    def raw_proba(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """Uncalibrated class probabilities straight from onnxruntime."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise OnnxModelError(
                f"input has shape {x.shape}, the model takes {len(self.feature_names)} features"
            )
        return self.session.run([PROBA_OUTPUT], {"input": x})[0]

    def predict_proba(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        proba = self.raw_proba(x).astype(np.float64)
        pos = self.positive_index
        if pos is not None:
            p = self.calibration.apply(proba[:, pos])
            proba[:, pos] = p
            proba[:, 1 - pos] = 1.0 - p
        return proba

    def predict(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]

    @property
    def positive_index(self) -> int | None:
        matches = np.flatnonzero(self.classes_ == self.positive_class)
        return int(matches[0]) if len(matches) and len(self.classes_) == 2 else None

    def missing_features(self, columns: list[str]) -> list[str]:
        present = set(columns)
        return [f for f in self.feature_names if f not in present]


def check_parity(native: Any, onnx: OnnxClassifier, x: npt.NDArray[Any],
                 tolerance: float = PARITY_TOLERANCE) -> float:
    """Max |p_native - p_onnx| over ``x``; raises OnnxModelError above ``tolerance``."""
    if len(x) == 0:
        raise OnnxModelError("no held-out rows to check ONNX parity on")
    expected = native.predict_proba(np.asarray(x, dtype=np.float32))
    got = onnx.raw_proba(x)
    delta = float(np.max(np.abs(expected - got)))
    if not np.isfinite(delta) or delta > tolerance:
        raise OnnxModelError(
            f"ONNX export disagrees with LightGBM by {delta:.2e} (> {tolerance:.0e}) on "
            f"{len(x)} held-out rows; refusing the ONNX model"
        )
    return delta


def servable(model: Any, pair: str, data_path: Any) -> OnnxClassifier:
    """``model`` when it is an ``OnnxClassifier``; else ``OnnxModelError`` saying to delete
    the pair's model folder ``data_path`` and retrain."""
    if not isinstance(model, OnnxClassifier):
        raise OnnxModelError(
            f"{pair}: the loaded model is {type(model).__name__}, not an ONNX model "
            f"trained by LightGBMOnnxClassifier; delete {data_path} and retrain"
        )
    return model


def require_features(model: OnnxClassifier, pair: str, columns: list[str]) -> None:
    """``OnnxModelError`` naming the pair and (up to 8 of) the features the model was
    trained on that ``columns`` lack."""
    missing = model.missing_features(columns)
    if missing:
        raise OnnxModelError(
            f"{pair}: the dataframe lacks {len(missing)} feature(s) the model was "
            f"trained on: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}. "
            f"The strategy's feature_engineering_* hooks or freqai.feature_parameters "
            f"changed since training: retrain (new freqai.identifier)."
        )


def write_file(model: OnnxClassifier, folder: Path, stem: str) -> Path:
    """Write the model's ONNX graph as ``folder/<stem>_model.onnx`` (atomically, beside
    FreqAI's files, for inspection with standard ONNX tools); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}_model.onnx"
    tmp = target.with_suffix(".onnx.tmp")
    tmp.write_bytes(model.onnx_bytes)
    tmp.replace(target)
    return target
