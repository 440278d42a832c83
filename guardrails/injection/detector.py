"""Runtime prompt-injection / jailbreak detector: hashed n-grams + logistic regression.

Loads a small ``.npz`` artifact (weights + config, no pickle, no scikit-learn) and scores
text with a numpy dot product. Long inputs are also scored in overlapping windows and the
maximum is taken, so a short instruction planted in a long retrieved document is not
diluted by the surrounding benign text.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from guardrails.injection.features import FeatureConfig, WindowConfig, featurize, featurize_segments, normalize
from guardrails.injection.rules import rule_hits, rule_names
from guardrails.verdict import Action, Verdict

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
DEFAULT_ARTIFACT = ARTIFACT_DIR / "injection-v1.npz"
FORMAT = "guardrails.injection/linear-hashing@1"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class InjectionDetector:
    """Score = P(injection) in [0, 1]; ``check`` compares it with the dev-tuned threshold."""

    def __init__(
        self,
        weights: npt.NDArray[np.float32],
        bias: float,
        threshold: float,
        features: FeatureConfig,
        window: WindowConfig,
        version: str = "dev",
        max_chars: int = 50_000,
    ) -> None:
        if weights.shape != (features.n_features,):
            raise ValueError(f"weights shape {weights.shape} != ({features.n_features},)")
        self.weights = weights.astype(np.float32, copy=False)
        self.bias = float(bias)
        self.threshold = float(threshold)
        self.features = features
        self.window = window
        self.version = version
        # Bounded work per call: beyond this we score head and tail windows only (see score).
        self.max_chars = max_chars

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path, extra_meta: dict[str, Any] | None = None) -> None:
        meta = {
            "format": FORMAT,
            "version": self.version,
            "bias": self.bias,
            "threshold": self.threshold,
            "features": self.features.to_dict(),
            "window": asdict(self.window),
            "max_chars": self.max_chars,
            **(extra_meta or {}),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # float16 halves the artifact; scores move by ~1e-3 and the threshold is chosen on
        # the reloaded (rounded) model, so that rounding is accounted for.
        np.savez_compressed(path, weights=self.weights.astype(np.float16), meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_ARTIFACT) -> InjectionDetector:
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            weights = z["weights"].astype(np.float32)
        if meta.get("format") != FORMAT:
            raise ValueError(f"unsupported artifact format {meta.get('format')!r}")
        return cls(
            weights,
            meta["bias"],
            meta["threshold"],
            FeatureConfig(**meta["features"]),
            WindowConfig(**meta["window"]),
            meta["version"],
            meta.get("max_chars", 50_000),
        )

    # ------------------------------------------------------------------ scoring
    def logit(self, text: str) -> float:
        """Logit of the whole text, no windows."""
        idx, vals = featurize(text, self.features)
        return float(np.dot(vals, self.weights[idx])) + self.bias

    def _bounded(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        # Cap latency on huge inputs: an attacker who pads 1 MB of filler gets the start
        # and the end examined, which is where injections are usually put. The gateway
        # should chunk long retrieved documents before calling us anyway.
        half = self.max_chars // 2
        return text[:half] + "\n" + text[-half:]

    def segments(self, text: str) -> list[str]:
        """The pieces that are scored (normalised): the whole text, then each window."""
        _, spans, norm = featurize_segments(self._bounded(text), self.features, self.window)
        return [norm] + [norm[s:e] for s, e in spans]

    def segment_logits(self, text: str) -> list[float]:
        feats, _, _ = featurize_segments(self._bounded(text), self.features, self.window)
        w = self.weights
        return [float(np.dot(vals, w[idx])) + self.bias for idx, vals in feats]

    def score(self, text: str) -> float:
        if not text.strip():
            return 0.0
        return _sigmoid(max(self.segment_logits(text)))

    def check(self, text: str, action: Action = "block", rail: str = "prompt_injection") -> Verdict:
        t0 = time.perf_counter()
        s = self.score(text)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        hit = s >= self.threshold
        detail = f"score={s:.3f} threshold={self.threshold:.3f} model={self.version}"
        if hit:
            # Which generic cues fired, for whoever triages the block (no text is logged).
            cues = rule_names(rule_hits(normalize(text[: self.max_chars])))
            detail += f" cues={','.join(cues) or '-'}"
        return Verdict(rail, action if hit else "pass", s, latency_ms, detail)
