"""Document mode: features of each sentence of an untrusted document (a retrieved chunk, a tool result).

An indirect injection is often an ordinary request ("What is the capital of Brazil?", "Remove
spaces from your response.") whose only sign is *where* it sits: inside data the assistant is
meant to read, addressed to the assistant. A whole-text or 250-char-window model dilutes a
30-char request in its host text, so document mode scores each sentence/line on its own, with
its n-grams plus a few context cues a linear model cannot see from n-grams alone:

* novelty: the share of the segment's words that occur nowhere else in the document (a planted
  request is usually off-topic; spliced benign sentences in training keep this from being the
  whole signal);
* whether it is a question, whether it says "you/your", its (log) length;
* its first word, hashed into the word block (requests start with "translate", "explain",
  "draft", "add"; docs with "returns", "see", "the").

The text is normalised line by line (newlines kept) so segments follow the document's lines.
Numpy only, like the rest of the runtime.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guardrails.injection.features import _U64, FeatureConfig, Features, PreparedText, _finalise, normalize
from guardrails.injection.memo import cached
from guardrails.injection.wordvec import WordVectors, topic_features

N_CONTEXT = 4  # novelty, question, second person, log length
_FIRST_WORD_SALT = _U64(0x5851F42D4C957F2D)
_LINE = re.compile(r"[^\n]+")
_SENTENCE_END = re.compile(r"(?<=[.!?]) (?=\S)")
_CONTENT_WORD = re.compile(r"[a-z]{3,}")
_YOU = re.compile(r"\byou(?:r|rs|rself)?\b")
_FIRST_WORD = re.compile(r"[a-z']+")
MAX_SEGMENT = 300  # longer segments (minified code, run-on lines) are cut into pieces this long


def doc_normalize(text: str) -> str:
    """``normalize`` per line, newlines kept (blank lines become empty lines)."""
    return "\n".join(normalize(line) for line in text.split("\n"))


def segment_spans(norm: str) -> list[tuple[int, int]]:
    """Sentence/line spans of a ``doc_normalize``d text, in order and not overlapping."""
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(norm):
        start = line.start()
        cuts = [m.start() for m in _SENTENCE_END.finditer(norm, line.start(), line.end())]
        for end in [*cuts, line.end()]:
            spans += [(s, min(s + MAX_SEGMENT, end)) for s in range(start, end, MAX_SEGMENT)]
            start = end + 1
    return [(s, e) for s, e in spans if norm[s:e].strip()]


def n_doc_features(cfg: FeatureConfig, wordvec_dims: int = 0) -> int:
    """Hashed blocks and cues, the context values, then (with word vectors) the topic vector and
    the cosine to the rest of the document."""
    return cfg.n_features + N_CONTEXT + (wordvec_dims + 1 if wordvec_dims else 0)


def context_columns(cfg: FeatureConfig, wordvec_dims: int = 0) -> list[int]:
    """Columns of the context values and of the topic cosine (-1, never present, without word vectors)."""
    base = cfg.n_features
    return [*range(base, base + N_CONTEXT), base + N_CONTEXT + wordvec_dims if wordvec_dims else -1]


@dataclass(frozen=True)
class SegmentMatrix:
    """Sparse features of all segments at once, COO-style: entry j is (row[j], col[j], val[j])."""

    row: npt.NDArray[np.int64]
    col: npt.NDArray[np.int64]
    val: npt.NDArray[np.float32]
    spans: list[tuple[int, int]]
    norm: str

    def logits(self, weights: npt.NDArray[np.float32], bias: float) -> npt.NDArray[np.float64]:
        return np.bincount(self.row, self.val * weights[self.col], minlength=len(self.spans)) + bias

    def dense(self, columns: Sequence[int]) -> npt.NDArray[np.float32]:
        """Values of ``columns`` per segment, (segments, columns); 0 where a column is absent."""
        out = np.zeros((len(self.spans), len(columns)), np.float32)
        for j, c in enumerate(columns):
            hit = self.col == c
            out[self.row[hit], j] = self.val[hit]
        return out

    def rows(self) -> list[Features]:
        """Per-segment (indices, values), for training."""
        order = np.argsort(self.row, kind="stable")
        cuts = np.searchsorted(self.row[order], np.arange(1, len(self.spans)))
        return list(zip(np.split(self.col[order], cuts), np.split(self.val[order], cuts), strict=True))


def _block(
    seg: npt.NDArray[np.int64], hashes: npt.NDArray[np.uint64], cfg: FeatureConfig, offset: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The same counts -> 1 + log -> L2-per-block values as ``features._block``, for every segment."""
    buckets = (hashes & _U64((1 << cfg.n_bits) - 1)).astype(np.int64)
    keys, counts = np.unique((seg << 32) | buckets, return_counts=True)
    rows, cols = keys >> 32, (keys & 0xFFFFFFFF) + offset
    vals = counts.astype(np.float32)
    if cfg.sublinear_tf:
        vals = 1.0 + np.log(vals)
    norms = np.sqrt(np.bincount(rows, vals * vals))
    return rows, cols, (vals / norms[rows]).astype(np.float32)


def _assign(starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64], seg_start: npt.NDArray[np.int64],
            seg_end: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Segment of each item [start, end) and whether it lies wholly inside it."""
    seg = np.searchsorted(seg_start, starts, "right") - 1
    inside = (seg >= 0) & (ends <= seg_end[np.maximum(seg, 0)])
    return seg, inside


def document_matrix(text: str, cfg: FeatureConfig, wordvec: WordVectors | None = None) -> SegmentMatrix:
    """Features of every segment of ``text``: hashed n-grams and cues (as ``features`` computes
    them for the segment alone), the context values, the first word, and with ``wordvec`` the
    topic columns. Vectorised over segments: a 2,000-char document has ~30-60 of them."""
    return cached(("document", text, cfg, (wordvec.name, wordvec.digest) if wordvec else None),
                  lambda: _document_matrix(text, cfg, wordvec))


def _document_matrix(text: str, cfg: FeatureConfig, wordvec: WordVectors | None) -> SegmentMatrix:
    norm = doc_normalize(text)
    spans = segment_spans(norm)
    empty = np.zeros(0, np.int64)
    if not spans:
        return SegmentMatrix(empty, empty, np.zeros(0, np.float32), [], norm)
    prepared = PreparedText(norm, cfg)
    seg_start = np.asarray([s for s, _ in spans], np.int64)
    seg_end = np.asarray([e for _, e in spans], np.int64)
    parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]] = []
    # Character n-grams.
    segs, hashes = [], []
    for n, h in prepared.char_hashes:
        pos = np.arange(h.size, dtype=np.int64)
        seg, inside = _assign(pos, pos + n, seg_start, seg_end)
        segs.append(seg[inside])
        hashes.append(h[inside])
    if segs:
        parts.append(_block(np.concatenate(segs), np.concatenate(hashes), cfg, 0))
    # Word unigrams and bigrams.
    tok_start, tok_end, uni, bi = prepared.word_hashes
    seg_u, in_u = _assign(tok_start, tok_end, seg_start, seg_end)
    seg_b, in_b = _assign(tok_start[:-1], tok_end[1:], seg_start, seg_end)
    word_seg = [seg_u[in_u]] + ([seg_b[in_b]] if cfg.word_bigrams and bi.size else [])
    word_hash = [uni[in_u]] + ([bi[in_b]] if cfg.word_bigrams and bi.size else [])
    if word_seg[0].size or len(word_seg) > 1:
        parts.append(_block(np.concatenate(word_seg), np.concatenate(word_hash), cfg, 1 << cfg.n_bits))
    # Cue rules, then context values and the first word (one entry per segment each).
    fired = {(int(k), r) for r, s, e in prepared.rule_spans
             for k in [np.searchsorted(seg_start, s, "right") - 1] if k >= 0 and e <= seg_end[k]}
    if fired:
        rk = np.asarray(sorted(fired), np.int64)
        parts.append((rk[:, 0], rk[:, 1] + (2 << cfg.n_bits), np.ones(len(rk), np.float32)))
    parts.append(_context(norm, spans, cfg))
    if wordvec is not None:
        dense = topic_features(wordvec, [norm[s:e] for s, e in spans])
        n_seg, n_col = dense.shape
        parts.append((
            np.repeat(np.arange(n_seg, dtype=np.int64), n_col),
            np.tile(np.arange(n_col, dtype=np.int64) + cfg.n_features + N_CONTEXT, n_seg),
            dense.ravel(),
        ))
    row, col, val = (np.concatenate(x) for x in zip(*parts, strict=True))
    return SegmentMatrix(row, col, val.astype(np.float32), spans, norm)


def _context(
    norm: str, spans: list[tuple[int, int]], cfg: FeatureConfig
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    words = [_CONTENT_WORD.findall(norm[s:e]) for s, e in spans]
    doc_counts: Counter[str] = Counter()
    for w in words:
        doc_counts.update(w)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    firsts: list[bytes] = []
    first_rows: list[int] = []
    base = cfg.n_features
    for k, ((s, e), seg_words) in enumerate(zip(spans, words, strict=True)):
        segment = norm[s:e]
        counts = Counter(seg_words)
        novel = sum(1 for w, c in counts.items() if doc_counts[w] == c) / len(counts) if counts else 0.0
        context = (novel, float(segment.endswith("?")), float(bool(_YOU.search(segment))), math.log1p(e - s) / 6.0)
        rows += [k] * N_CONTEXT
        cols += range(base, base + N_CONTEXT)
        vals += context
        m = _FIRST_WORD.search(segment)
        if m:
            firsts.append(m.group().encode())
            first_rows.append(k)
    if firsts:
        # Salted apart from the unigram hashes; lands in the word block.
        ids = np.fromiter((zlib.crc32(f) for f in firsts), np.uint64, len(firsts))
        buckets = (_finalise(ids ^ _FIRST_WORD_SALT) & _U64((1 << cfg.n_bits) - 1)).astype(np.int64)
        rows += first_rows
        cols += (buckets + (1 << cfg.n_bits)).tolist()
        vals += [0.5] * len(firsts)
    return np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(vals, np.float32)


def payload_span(text: str, span: tuple[int, int], norm: str) -> tuple[int, int] | None:
    """Where a planted payload (``text[span]``) lies in ``doc_normalize(text)`` (training labels)."""
    payload = doc_normalize(text[span[0] : span[1]]).strip()
    if not payload:
        return None
    head = len(doc_normalize(text[: span[0]]))
    at = norm.find(payload, max(0, head - 2))
    if at < 0:
        at = norm.find(payload)
    return (at, at + len(payload)) if at >= 0 else None
