"""Static word-piece vectors (distilled from MiniLM by ``wordvec_build``), numpy only.

The document model uses them for two things the hashed n-grams cannot see: what a sentence is
about in words it was never trained on ("compose a letter" ~ "draft an essay"), and how far that
is from the rest of the document (a planted request is usually off-topic for its host).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

FORMAT = "guardrails.injection/wordpiece-vectors@1"
# Built from the installed MiniLM by setup (``python -m guardrails.injection.wordvec_build``, ~17 s,
# bit-identical on rebuild), not kept in git: it is 7 MB of derived weights.
DEFAULT_WORDVEC = Path(__file__).resolve().parents[2] / "models" / "wordvec" / "wordvec-minilm-128.npz"
_WORD = re.compile(r"[^\W\d_]{2,}")
MAX_WORD = 40
# Function words carry no topic; left in, they pull every sentence towards the same centre.
_STOPWORD_TEXT = """
the and for that this with are was were from have has had not but they their them its our out
all any can may will would should could been being into than then there these those which what
when where who whom how why also just only such some more most other each both very over under
about after before between through while his her him she he it is be as at by an of on or in to
if so no do does did we us me my
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class WordVectors:
    def __init__(self, pieces: list[str], vectors: npt.NDArray[np.float32], name: str, digest: str) -> None:
        self.index = {p: i for i, p in enumerate(pieces)}
        self.vectors = vectors
        self.dims = int(vectors.shape[1])
        self.name = name
        self.digest = digest
        self._word = lru_cache(maxsize=65_536)(self._word_uncached)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_WORDVEC) -> WordVectors:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"word vectors not found at {path} (bash scripts/setup.sh builds them: "
                "python -m guardrails.injection.wordvec_build)"
            )
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: unsupported word-vector format {meta.get('format')!r}")
            pieces = [str(p) for p in z["pieces"]]
            vectors = z["vectors"].astype(np.float32)
        return cls(pieces, vectors, path.name, str(meta.get("source_digest", "")))

    def _pieces(self, word: str) -> list[int]:
        """Greedy longest-match-first word pieces, as BERT's tokenizer splits; [] if any part is unknown."""
        if word in self.index:
            return [self.index[word]]
        out: list[int] = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.index:
                    out.append(self.index[piece])
                    start = end
                    break
            else:
                return []
        return out

    def _word_uncached(self, word: str) -> npt.NDArray[np.float32] | None:
        ids = self._pieces(word[:MAX_WORD])
        return self.vectors[ids].mean(axis=0) if ids else None

    def sums(self, texts: list[str]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Per text: the sum of its content words' vectors and how many there were."""
        total = np.zeros((len(texts), self.dims), np.float32)
        counts = np.zeros(len(texts), np.int64)
        for k, text in enumerate(texts):
            for word in _WORD.findall(text):
                if word in STOPWORDS:
                    continue
                vec = self._word(word)
                if vec is not None:
                    total[k] += vec
                    counts[k] += 1
        return total, counts


def unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def topic_features(wv: WordVectors, segments: list[str]) -> npt.NDArray[np.float32]:
    """Per segment: its unit topic vector, then the cosine to the rest of the document (0 when
    either side has no known word)."""
    total, _ = wv.sums(segments)
    rest = total.sum(axis=0, keepdims=True) - total
    own = unit(total)
    cos = np.einsum("ij,ij->i", own, unit(rest))
    return np.concatenate([own, cos[:, None]], axis=1).astype(np.float32)
