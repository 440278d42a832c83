"""Runtime prompt-injection / jailbreak detector: hashed n-grams + logistic regression.

Loads a small ``.npz`` artifact (weights + config, no pickle, no scikit-learn) and scores
text with a numpy dot product. Long inputs are also scored in overlapping windows and the
maximum is taken, so a short instruction planted in a long retrieved document is not
diluted by the surrounding benign text.

Document mode (``document=True``, for retrieved chunks and tool results) adds a second linear
model over each sentence of the text (see ``document``): a request addressed to the assistant
inside data is an injection there even when the same words are a fine user prompt. Since v4 a
small tree ensemble rescores the document from a summary of its sentences' scores (``rescore``).
Since v5, documents those trees rank high get a last look: a fine-tuned MiniLM scores their top
sentences (``sentence_model``) and a second ensemble decides from both. Since v9, short prompts the
first stage scores near or above the threshold get a second opinion too: another fine-tuned MiniLM
reads them whole and its logit is added (``prompt_stage``).
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

from guardrails.injection.document import SegmentMatrix, context_columns, document_matrix, n_doc_features
from guardrails.injection.encoded import decoded_payloads
from guardrails.injection.features import FeatureConfig, WindowConfig, featurize, featurize_segments, normalize
from guardrails.injection.prompt_stage import PromptStage
from guardrails.injection.rescore import Trees, summary
from guardrails.injection.rules import rule_hits, rule_names
from guardrails.injection.sentence_data import SENTENCE_ADAPTER
from guardrails.injection.sentence_model import SentenceModel, file_digest
from guardrails.injection.wordvec import DEFAULT_WORDVEC, WordVectors
from guardrails.verdict import Action, Verdict

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
DEFAULT_ARTIFACT = ARTIFACT_DIR / "injection-v9.npz"
FORMAT = "guardrails.injection/linear-hashing@1"
FORMAT_DOC = "guardrails.injection/linear-hashing+document@2"
# A new name, not an optional extra: code that predates the rescoring trees must refuse such an
# artifact rather than score documents without them at thresholds set with them.
FORMAT_RESCORE = "guardrails.injection/linear-hashing+document+rescore@3"
FORMAT_SENTENCE = "guardrails.injection/linear-hashing+document+rescore+sentence@4"
# Prompt mode's second opinion on top (v9): older code would score prompts without it, at a
# threshold it shares with document mode but whose prompt-side offset is the prompt stage's.
FORMAT_PROMPT = "guardrails.injection/linear-hashing+document+rescore+sentence+prompt@5"
FORMATS = (FORMAT, FORMAT_DOC, FORMAT_RESCORE, FORMAT_SENTENCE, FORMAT_PROMPT)
TREES = "doc_trees_"
SENTENCE_TREES = "sentence_trees_"
SENTENCE_TOP = 3  # sentences of a document the sentence model reads (by the first stage's ranking)
MISSING_SENTENCE = -10.0  # the sentence model's input for a document with fewer sentences


def sentence_inputs(x: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The last stage's input: the rescoring summary plus the sentence model's score of the top
    sentence and the highest of the top ``SENTENCE_TOP``."""
    top = float(scores[0]) if len(scores) else MISSING_SENTENCE
    return np.concatenate([x, [top, max(scores.tolist(), default=MISSING_SENTENCE)]])


def _adapter(path: str | Path, meta: dict[str, Any], what: str) -> SentenceModel:
    """The MiniLM adapter ``meta`` names (beside the artifact, else in the package), digest-checked."""
    beside = Path(path).parent / meta["file"]
    adapter = beside if beside.exists() else SENTENCE_ADAPTER.parent / meta["file"]
    if file_digest(adapter) != meta["digest"]:
        raise ValueError(f"{adapter.name} is not the {what} {Path(path).name} was trained with")
    return SentenceModel.load(adapter)


def _offsets(value: list[float] | None) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def sigmoid(x: float) -> float:
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
        doc_weights: npt.NDArray[np.float32] | None = None,
        doc_bias: float = 0.0,
        doc_prompt_offset: float = 0.0,
        wordvec: WordVectors | None = None,
        doc_trees: Trees | None = None,
        sentence: SentenceModel | None = None,
        sentence_trees: Trees | None = None,
        sentence_gate: float = math.inf,
        skip_offsets: tuple[float, float] | None = None,
        prompt_stage: PromptStage | None = None,
    ) -> None:
        if weights.shape != (features.n_features,):
            raise ValueError(f"weights shape {weights.shape} != ({features.n_features},)")
        n_doc = n_doc_features(features, wordvec.dims if wordvec else 0)
        if doc_weights is not None and doc_weights.shape != (n_doc,):
            raise ValueError(f"doc_weights shape {doc_weights.shape} != ({n_doc},)")
        self.weights = weights.astype(np.float32, copy=False)
        self.bias = float(bias)
        self.threshold = float(threshold)
        self.features = features
        self.window = window
        self.version = version
        # Bounded work per call: beyond this we score head and tail windows only (see score).
        self.max_chars = max_chars
        self.doc_weights = None if doc_weights is None else doc_weights.astype(np.float32, copy=False)
        self.doc_bias = float(doc_bias)
        # Added to the prompt model's logits in document mode: documents get their own share of
        # the false-positive budget (tuned on dev), the prompt path keeps the plain threshold.
        self.doc_prompt_offset = float(doc_prompt_offset)
        # Static word vectors for the document model's topic columns (see ``wordvec``); a separate
        # artifact, named and digest-checked in this one's metadata.
        self.wordvec = wordvec
        # Second stage of document mode (``rescore``); None: a document scores as its worst sentence.
        # The calibration offset of document mode lives in ``doc_bias`` without trees, in the trees'
        # baseline with them (the trees read the sentences' logits at the bias they were fitted with).
        self.doc_trees = doc_trees
        # Last stage (v5): documents whose ``doc_trees`` score reaches ``sentence_gate`` are decided by
        # ``sentence_trees`` over the same summary plus the sentence model's scores of their top
        # sentences; the others pass document mode. The calibration offset is then in these trees.
        self.sentence = sentence
        self.sentence_trees = sentence_trees
        self.sentence_gate = float(sentence_gate)
        # Document mode without the last stage (a policy may skip the sentence model for latency):
        # (document offset added to ``doc_trees``' score, prompt-model offset), calibrated like v4's
        # at the same threshold. None: this artifact cannot skip it.
        self.skip_offsets = skip_offsets
        # Prompt mode's second opinion (v9, ``prompt_stage``); None: the first stage decides alone.
        self.prompt_stage = prompt_stage

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path, extra_meta: dict[str, Any] | None = None) -> None:
        meta = {
            "format": self._format(),
            "version": self.version,
            "bias": self.bias,
            "threshold": self.threshold,
            "features": self.features.to_dict(),
            "window": asdict(self.window),
            "max_chars": self.max_chars,
            **(extra_meta or {}),
        }
        arrays = {"weights": self.weights.astype(np.float16)}
        if self.doc_weights is not None:
            meta |= {"doc_bias": self.doc_bias, "doc_prompt_offset": self.doc_prompt_offset}
            if self.wordvec is not None:
                meta["doc_wordvec"] = {"file": self.wordvec.name, "digest": self.wordvec.digest}
            arrays["doc_weights"] = self.doc_weights.astype(np.float16)
            if self.doc_trees is not None:
                arrays |= self.doc_trees.arrays(TREES)
            if self.sentence_trees is not None:
                assert self.sentence is not None and self.doc_trees is not None
                arrays |= self.sentence_trees.arrays(SENTENCE_TREES)
                meta["sentence"] = {"file": self.sentence.name, "digest": self.sentence.digest, "gate": self.sentence_gate}
                if self.skip_offsets is not None:
                    meta["sentence"]["skip_offsets"] = list(self.skip_offsets)
            if self.prompt_stage is not None:
                assert self.sentence_trees is not None
                meta["prompt_stage"] = self.prompt_stage.meta()
        path.parent.mkdir(parents=True, exist_ok=True)
        # float16 halves the artifact; scores move by ~1e-3 and the threshold is chosen on
        # the reloaded (rounded) model, so that rounding is accounted for.
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]

    def _format(self) -> str:
        if self.doc_weights is None:
            return FORMAT
        if self.doc_trees is None:
            return FORMAT_DOC
        if self.sentence_trees is None:
            return FORMAT_RESCORE
        return FORMAT_SENTENCE if self.prompt_stage is None else FORMAT_PROMPT

    @classmethod
    def load(cls, path: str | Path = DEFAULT_ARTIFACT) -> InjectionDetector:
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            weights = z["weights"].astype(np.float32)
            doc_weights = z["doc_weights"].astype(np.float32) if "doc_weights" in z.files else None
            fmt = meta.get("format")
            doc_trees = Trees.from_arrays(z, TREES) if fmt in (FORMAT_RESCORE, FORMAT_SENTENCE, FORMAT_PROMPT) else None
            sentence_trees = Trees.from_arrays(z, SENTENCE_TREES) if fmt in (FORMAT_SENTENCE, FORMAT_PROMPT) else None
        if fmt not in FORMATS:
            raise ValueError(f"unsupported artifact format {fmt!r}")
        sentence = _adapter(path, meta["sentence"], "sentence model") if sentence_trees is not None else None
        prompt_stage = None
        if fmt == FORMAT_PROMPT:
            stage = meta["prompt_stage"]
            model = _adapter(path, stage, "prompt model")
            prompt_stage = PromptStage(model, float(stage["weight"]), float(stage["gate"]), float(stage["offset"]))
        wordvec = None
        if "doc_wordvec" in meta:
            name = meta["doc_wordvec"]["file"]
            beside = Path(path).parent / name
            wordvec = WordVectors.load(beside if beside.exists() else DEFAULT_WORDVEC.parent / name)
            if wordvec.digest != meta["doc_wordvec"]["digest"]:
                raise ValueError(f"{wordvec.name} was built from another model than {Path(path).name} was trained with")
        return cls(
            weights,
            meta["bias"],
            meta["threshold"],
            FeatureConfig(**meta["features"]),
            WindowConfig(**meta["window"]),
            meta["version"],
            meta.get("max_chars", 50_000),
            doc_weights,
            meta.get("doc_bias", 0.0),
            meta.get("doc_prompt_offset", 0.0),
            wordvec,
            doc_trees,
            sentence,
            sentence_trees,
            meta["sentence"]["gate"] if sentence_trees is not None else math.inf,
            _offsets(meta["sentence"].get("skip_offsets")) if sentence_trees is not None else None,
            prompt_stage,
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

    def prompt_parts(self, text: str) -> tuple[float, str, bool]:
        """(max prompt-model logit, its most suspicious piece, whether that piece is the whole text): the
        normalised text when it is one window or shorter, else its top-scoring window."""
        logits, spans, norm = self._scored_segments(text)
        if not spans:
            return logits[0], norm, True
        top = int(np.argmax(logits[1:]))
        return max(logits), norm[slice(*spans[top])], False

    def segments(self, text: str) -> list[str]:
        """The pieces that are scored (normalised): the whole text, then each window."""
        _, spans, norm = featurize_segments(self._bounded(text), self.features, self.window)
        return [norm] + [norm[s:e] for s, e in spans]

    def segment_logits(self, text: str) -> list[float]:
        return self._scored_segments(text)[0]

    def _scored_segments(self, text: str) -> tuple[list[float], list[tuple[int, int]], str]:
        """Logits of the whole text and each window, the windows' spans, the normalised text."""
        feats, spans, norm = featurize_segments(self._bounded(text), self.features, self.window)
        w = self.weights
        return [float(np.dot(vals, w[idx])) + self.bias for idx, vals in feats], spans, norm

    def document_logits(self, text: str) -> list[float]:
        """Logit of each sentence/line segment under the document model (empty without one)."""
        if self.doc_weights is None:
            return []
        return self._document_matrix(text).logits(self.doc_weights, self.doc_bias).tolist()

    def _document_matrix(self, text: str) -> SegmentMatrix:
        return document_matrix(self._bounded(text), self.features, self.wordvec)

    def document_summary(self, text: str, prompt: float) -> tuple[np.ndarray, list[str]] | None:
        """The rescoring trees' input for ``text`` (``prompt``: its prompt-model logit) and its top
        ``SENTENCE_TOP`` sentences by the sentence model; None when there is no sentence to score."""
        assert self.doc_weights is not None
        matrix = self._document_matrix(text)
        if not matrix.spans:
            return None
        dense = matrix.dense(context_columns(self.features, self.wordvec.dims if self.wordvec else 0))
        seg = matrix.logits(self.doc_weights, self.doc_bias)
        top = [matrix.norm[slice(*matrix.spans[j])] for j in np.argsort(-seg, kind="stable")[:SENTENCE_TOP]]
        return summary(seg, dense, prompt), top

    @property
    def can_skip_last_stage(self) -> bool:
        """Whether document mode can run without the sentence model (``last_stage=False``)."""
        return self.sentence_trees is None or self.skip_offsets is not None

    def _skip(self, last_stage: bool) -> tuple[float, float] | None:
        """The offsets to score with when the last stage is skipped; None: it is not (or there is none)."""
        if last_stage or self.sentence_trees is None:
            return None
        if self.skip_offsets is None:
            raise ValueError(f"detector {self.version} has no calibration for document mode without its last stage")
        return self.skip_offsets

    def document_logit(self, text: str, prompt: float, last_stage: bool = True) -> float:
        """Document-mode logit: the last stage's trees over the sentences, or the worst sentence's.
        ``last_stage=False``: the rescoring trees decide, at their own calibration (no sentence model)."""
        if self.doc_weights is None:
            return -math.inf
        if self.doc_trees is None:
            return max(self.document_logits(text), default=-math.inf)
        skip = self._skip(last_stage)
        found = self.document_summary(text, prompt)
        if found is None:
            return -math.inf
        x, top = found
        first = self.doc_trees.decision(x)
        if self.sentence_trees is None:
            return first
        if skip is not None:
            return first + skip[0]
        if first < self.sentence_gate:
            return -math.inf
        assert self.sentence is not None
        return self.sentence_trees.decision(sentence_inputs(x, self.sentence.logits(top)))

    def shift_document(self, delta: float) -> None:
        """Move document mode's calibration offset by ``delta`` (see ``doc_trees``)."""
        last = self.sentence_trees or self.doc_trees
        if last is not None:
            last.baseline += delta
        else:
            self.doc_bias += delta

    def logit_parts(self, text: str, last_stage: bool = True) -> tuple[float, float]:
        """(max prompt-model logit, document-mode logit); -inf where there is nothing to score."""
        if not text.strip():
            return -math.inf, -math.inf
        prompt = max(self.segment_logits(text))
        return prompt, self.document_logit(text, prompt, last_stage)

    def score(self, text: str, document: bool = False, last_stage: bool = True, decode: bool = True) -> float:
        """P(injection). ``document``: the text is untrusted data (retrieved chunk, tool result),
        not a message the user wrote, so requests addressed to the assistant inside it count.
        ``last_stage=False``: document mode without the sentence model (see ``skip_offsets``), prompt
        mode without the prompt stage (the first stage at its own calibration). Text hidden in
        base64 or hex (``encoded``) is scored as a prompt too, the highest score counting
        (``decode=False``: not, as v9 scored)."""
        return self.explain(text, document, last_stage, decode)[0]

    def explain(
        self, text: str, document: bool = False, last_stage: bool = True, decode: bool = True
    ) -> tuple[float, bool]:
        """``score``, and whether text decoded from base64 or hex is what scored it (for the verdict's
        detail: a blob blocked for what it decodes to should say so)."""
        own = self._score(text, document, last_stage)
        # The same head and tail of a huge text the stages read (``_bounded``).
        hidden = decoded_payloads(self._bounded(text)) if decode else []
        best = max((self._score(payload, False, last_stage) for payload in hidden), default=own)
        return (best, True) if best > own else (own, False)

    def _score(self, text: str, document: bool, last_stage: bool) -> float:
        if not text.strip():
            return 0.0
        if not document or self.doc_weights is None:
            if self.prompt_stage is None or not last_stage:
                return sigmoid(max(self.segment_logits(text)))
            # Only prompts it reads whole: one window (250 characters) or shorter (see ``prompt_stage``).
            return sigmoid(self.prompt_stage.logit(*self.prompt_parts(text)))
        prompt, doc = self.logit_parts(text, last_stage)
        skip = self._skip(last_stage)
        prompt_offset = self.doc_prompt_offset if skip is None else skip[1]
        return sigmoid(max(prompt + prompt_offset, doc))

    def check(
        self, text: str, action: Action = "block", rail: str = "prompt_injection", document: bool = False,
        last_stage: bool = True,
    ) -> Verdict:
        t0 = time.perf_counter()
        s = self.score(text, document, last_stage)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        hit = s >= self.threshold
        detail = f"score={s:.3f} threshold={self.threshold:.3f} model={self.version}"
        if hit:
            # Which generic cues fired, for whoever triages the block (no text is logged).
            cues = rule_names(rule_hits(normalize(text[: self.max_chars])))
            detail += f" cues={','.join(cues) or '-'}"
        return Verdict(rail, action if hit else "pass", s, latency_ms, detail)
