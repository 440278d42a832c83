"""Group near-duplicate texts so one template never straddles train and test.

The in-the-wild jailbreak set contains dozens of lightly edited DAN variants; a random
row split would put siblings on both sides and report memorisation as generalisation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

_TOKEN = re.compile(r"\w+")


def shingles(text: str, k: int = 5) -> frozenset[str]:
    words = _TOKEN.findall(text.lower())
    if len(words) <= k:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + k]) for i in range(len(words) - k + 1))


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _postings(sets: Sequence[frozenset[str]]) -> dict[str, list[int]]:
    """Which texts (by index) hold each shingle."""
    index: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for sh in s:
            index[sh].append(i)
    return index


def near_duplicate_groups(texts: Sequence[str], threshold: float = 0.5, max_df: int = 100) -> list[int]:
    """Return a group id per text; texts sharing >= ``threshold`` of the smaller shingle set join.

    The overlap coefficient (not Jaccard) is used so a template embedded in a longer prompt
    still joins its group. Shingles occurring in more than ``max_df`` texts are boilerplate
    ("as an ai language model") and are ignored, which also keeps this sub-quadratic.
    """
    sets = [shingles(t) for t in texts]
    index = _postings(sets)
    uf = _UnionFind(len(texts))
    for i, s in enumerate(sets):
        shared: dict[int, int] = defaultdict(int)
        for sh in s:
            postings = index[sh]
            if len(postings) > max_df:
                continue
            for j in postings:
                if j > i:
                    shared[j] += 1
        for j, n in shared.items():
            if n >= threshold * min(len(s), len(sets[j])):
                uf.union(i, j)
    return [uf.find(i) for i in range(len(texts))]


def near_copies(texts: Sequence[str], of: Sequence[str], threshold: float = 0.5) -> list[bool]:
    """Whether each text shares >= ``threshold`` of the smaller shingle set with some text in ``of``:
    the test ``near_duplicate_groups`` applies, one pair at a time (no chains through a third text)."""
    sets = [shingles(t) for t in of]
    index = _postings(sets)
    out = []
    for text in texts:
        mine = shingles(text)
        shared: dict[int, int] = defaultdict(int)
        for sh in mine:
            for j in index.get(sh, ()):
                shared[j] += 1
        out.append(any(n >= threshold * min(len(mine), len(sets[j])) for j, n in shared.items()))
    return out
