"""Feature hashing for the injection detector, in numpy so runtime needs no scikit-learn.

Training and inference both call :func:`featurize`, so there is no train/serve skew: the
artifact stores only weights indexed by these hash buckets. Hashes are our own (FNV-like
rolling hash + splitmix64 finaliser, crc32 for words) because Python's ``hash`` is salted
per process and sklearn's murmur3 would drag sklearn into the runtime.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from guardrails.injection.memo import cached
from guardrails.injection.rules import RULES, RULES_VERSION, rule_spans

_U64 = np.uint64
_PRIME = _U64(1099511628211)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_WORD_SALT = _U64(0x9E3779B97F4A7C15)
_BIGRAM_SALT = _U64(0xD6E8FEB86659FD93)
_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that changes the feature space; stored in the artifact and checked on load."""

    n_bits: int = 18
    char_min: int = 3
    char_max: int = 5
    word_bigrams: bool = True
    sublinear_tf: bool = True
    # 0 = no cue features; otherwise the ``rules.RULES_VERSION`` the weights were fit with.
    rules_version: int = 0

    @property
    def n_features(self) -> int:
        # Two blocks (char n-grams, word n-grams) of 2**n_bits each, then one slot per cue.
        return (2 << self.n_bits) + (len(RULES) if self.rules_version else 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize(text: str) -> str:
    # NFKC folds full-width and other look-alike forms that are a cheap evasion trick;
    # zero-width characters are removed for the same reason.
    text = unicodedata.normalize("NFKC", text)
    text = _ZERO_WIDTH.sub("", text)
    return _SPACES.sub(" ", text).strip().lower()


def _finalise(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        h = (h ^ (h >> _U64(30))) * _M1
        h = (h ^ (h >> _U64(27))) * _M2
        return h ^ (h >> _U64(31))


@dataclass(frozen=True)
class WindowConfig:
    """Character windows (over the *normalised* text); ``size == 0`` disables windowing."""

    size: int = 250
    stride: int = 125

    def spans(self, n: int) -> list[tuple[int, int]]:
        if self.size <= 0 or n <= self.size:
            return []
        starts = list(range(0, n - self.size + 1, self.stride))
        if starts[-1] + self.size < n:
            starts.append(n - self.size)
        return [(s, s + self.size) for s in starts]


Features = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


class PreparedText:
    """Hashes of one normalised text, computed once and sliced per window.

    Scoring a 2,000-char prompt as the whole text plus 15 overlapping windows would
    otherwise hash ~3x the characters and run every cue regex 16 times. An n-gram or
    token belongs to a window only if it lies entirely inside it, which is exactly what
    featurising the window's text on its own would produce, minus the partial words at its
    edges.
    """

    def __init__(self, norm: str, cfg: FeatureConfig) -> None:
        self.norm = norm
        self.cfg = cfg
        codes = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        self._char: list[tuple[int, npt.NDArray[np.uint64]]] = []
        with np.errstate(over="ignore"):
            for n in range(cfg.char_min, cfg.char_max + 1):
                m = codes.size - n + 1
                if m <= 0:
                    continue
                h = np.full(m, n, dtype=np.uint64)
                for k in range(n):
                    h = h * _PRIME + codes[k : k + m]
                self._char.append((n, _finalise(h)))
        matches = list(_WORD.finditer(norm))
        self._tok_start = np.fromiter((m.start() for m in matches), dtype=np.int64, count=len(matches))
        self._tok_end = np.fromiter((m.end() for m in matches), dtype=np.int64, count=len(matches))
        ids = np.fromiter((zlib.crc32(m.group().encode("utf-8")) for m in matches), dtype=np.uint64, count=len(matches))
        self._uni = _finalise(ids ^ _WORD_SALT)
        with np.errstate(over="ignore"):
            self._bi = _finalise((ids[:-1] * _PRIME + ids[1:]) ^ _BIGRAM_SALT) if ids.size > 1 else ids[:0]
        if cfg.rules_version and cfg.rules_version != RULES_VERSION:
            raise ValueError(f"artifact uses cue rules v{cfg.rules_version}, code has v{RULES_VERSION}")
        self._rules = rule_spans(norm) if cfg.rules_version else []

    @property
    def char_hashes(self) -> list[tuple[int, npt.NDArray[np.uint64]]]:
        """(n, hash of the n-gram starting at each position) for each n."""
        return self._char

    @property
    def word_hashes(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """Token starts, token ends, unigram hashes, bigram hashes (bigram i = tokens i, i+1)."""
        return self._tok_start, self._tok_end, self._uni, self._bi

    @property
    def rule_spans(self) -> list[tuple[int, int, int]]:
        return self._rules

    def segment(self, start: int = 0, end: int | None = None) -> Features:
        cfg = self.cfg
        end = len(self.norm) if end is None else end
        char = [h[start : max(start, end - n + 1)] for n, h in self._char]
        ci, cv = _block(np.concatenate(char) if char else np.zeros(0, np.uint64), cfg, 0)
        i0 = int(np.searchsorted(self._tok_start, start, "left"))
        i1 = int(np.searchsorted(self._tok_end, end, "right"))
        words = [self._uni[i0:i1]]
        if cfg.word_bigrams and i1 - i0 > 1:
            words.append(self._bi[i0 : i1 - 1])
        wi, wv = _block(np.concatenate(words), cfg, 1 << cfg.n_bits)
        if not cfg.rules_version:
            return np.concatenate([ci, wi]), np.concatenate([cv, wv])
        fired = sorted({r for r, s, e in self._rules if s >= start and e <= end})
        ri = np.asarray(fired, dtype=np.int64) + (2 << cfg.n_bits)
        return np.concatenate([ci, wi, ri]), np.concatenate([cv, wv, np.ones(ri.size, dtype=np.float32)])


def _block(hashes: npt.NDArray[np.uint64], cfg: FeatureConfig, offset: int) -> Features:
    if hashes.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    buckets = (hashes & _U64((1 << cfg.n_bits) - 1)).astype(np.int64)
    idx, counts = np.unique(buckets, return_counts=True)
    vals = counts.astype(np.float32)
    if cfg.sublinear_tf:
        vals = 1.0 + np.log(vals)
    # Each block is L2-normalised on its own so long texts are not scored by sheer volume.
    vals /= np.float32(np.sqrt(np.dot(vals, vals)))
    return idx + offset, vals


def featurize_segments(
    text: str, cfg: FeatureConfig, window: WindowConfig
) -> tuple[list[Features], list[tuple[int, int]], str]:
    """Features of the whole text followed by each window; also the window spans and the
    normalised text they index into."""

    def compute() -> tuple[list[Features], list[tuple[int, int]], str]:
        prepared = PreparedText(normalize(text), cfg)
        spans = window.spans(len(prepared.norm))
        return [prepared.segment()] + [prepared.segment(s, e) for s, e in spans], spans, prepared.norm

    return cached(("segments", text, cfg, window), compute)


def featurize(text: str, cfg: FeatureConfig) -> Features:
    """Sparse feature vector of ``text`` as (indices, values); indices are unique and sorted."""
    return PreparedText(normalize(text), cfg).segment()
