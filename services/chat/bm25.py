"""Okapi BM25 over short passages, written out here (about 60 lines) rather than pulled in.

Scores: sum over query terms of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen)),
idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)) (the non-negative variant Lucene uses). The index
(document frequencies, per-passage term counts) is built once; a query costs one dict lookup per
term and passage that contains it."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS_TEXT = """a about above after again against all am an and any are as at be
    because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves please tell know want get got also may might much many us let available"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stemmer: enough to match 'vaccines'/'vaccination', 'cats'/'cat'."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix == "ies" else base
    return word


def tokenize(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25:
    def __init__(self, passages: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.counts = [Counter(p) for p in passages]
        self.lengths = [len(p) for p in passages]
        self.avglen = (sum(self.lengths) / len(passages)) if passages else 0.0
        df: Counter[str] = Counter()
        for counts in self.counts:
            df.update(counts.keys())
        n = len(passages)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.postings: dict[str, list[int]] = {}
        for index, counts in enumerate(self.counts):
            for term in counts:
                self.postings.setdefault(term, []).append(index)

    def scores(self, query: Sequence[str]) -> dict[int, float]:
        """Score of every passage that shares at least one term with the query."""
        out: dict[int, float] = {}
        for term in set(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for index in self.postings[term]:
                tf = self.counts[index][term]
                norm = 1 - self.b + self.b * self.lengths[index] / self.avglen
                out[index] = out.get(index, 0.0) + idf * tf * (self.k1 + 1) / (tf + self.k1 * norm)
        return out

    def top(self, query: Sequence[str], k: int) -> list[tuple[int, float]]:
        ranked = sorted(self.scores(query).items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k]
