"""The pet-care knowledge base (``knowledge/*.md``) and its BM25 index, built once at startup.

A file is ``# Title``, a ``Sources:`` line, then ``## Section`` blocks; a section is what is
ranked and cited ("Title — Section", with the file's sources)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.chat.bm25 import BM25, tokenize

# Species words (the Pet enum plus everyday names) used to expand queries and pick catalogue rows.
SPECIES_WORDS: dict[str, tuple[str, ...]] = {
    "DOG": ("dog", "dogs", "puppy", "puppies", "pup", "canine"),
    "CAT": ("cat", "cats", "kitten", "kittens", "kitty", "feline"),
    "RABBIT": ("rabbit", "rabbits", "bunny", "bunnies"),
    "BIRD": ("bird", "birds", "parrot", "parrots", "budgie", "budgies", "parakeet", "cockatiel"),
    "REPTILE": (
        "reptile",
        "reptiles",
        "lizard",
        "lizards",
        "snake",
        "snakes",
        "turtle",
        "tortoise",
        "gecko",
        "dragon",
    ),
    "OTHER": ("hamster", "hamsters", "guinea", "ferret", "ferrets", "rat", "rats", "mouse", "fish"),
}


@dataclass(frozen=True)
class Section:
    title: str  # the file's title
    heading: str  # the section's heading
    text: str
    sources: str
    path: str  # file name, for tests and logs

    @property
    def citation(self) -> str:
        return f"{self.title} — {self.heading}"


@dataclass(frozen=True)
class Hit:
    section: Section
    score: float


def parse(path: Path) -> list[Section]:
    title, sources = path.stem, ""
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if heading is not None and lines:
            text = " ".join(" ".join(lines).split())
            sections.append(Section(title, heading, text, sources, path.name))

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("## "):
            flush()
            heading, lines = line[3:].strip(), []
        elif line.startswith("# "):
            title = line[2:].strip()
        elif line.lower().startswith("sources:") and heading is None:
            sources = line.split(":", 1)[1].strip()
        elif line and heading is not None:
            lines.append(line)
    flush()
    return sections


class KnowledgeBase:
    def __init__(self, sections: list[Section]) -> None:
        self.sections = sections
        # The heading counts twice: it says what a section is about.
        self.index = BM25(
            [tokenize(f"{s.title} {s.heading} {s.heading} {s.text}") for s in sections]
        )

    @classmethod
    def load(cls, folder: Path) -> KnowledgeBase:
        sections: list[Section] = []
        for path in sorted(folder.glob("*.md")):
            if path.name.lower() != "readme.md":
                sections.extend(parse(path))
        if not sections:
            raise ValueError(f"no knowledge sections found in {folder}")
        return cls(sections)

    def search(self, query: str, k: int = 3, min_share: float = 0.35) -> list[Hit]:
        """The best ``k`` sections; ones scoring under ``min_share`` of the best are dropped so a
        weak second match is not cited as if it were relevant."""
        # Everyday species names also search as the species ("bunny" finds rabbit care).
        expanded = query + " " + " ".join(SPECIES_WORDS[code][0] for code in species_in(query))
        ranked = self.index.top(tokenize(expanded), k)
        if not ranked:
            return []
        best = ranked[0][1]
        return [Hit(self.sections[i], s) for i, s in ranked if s >= best * min_share]


def species_in(text: str) -> list[str]:
    words = set(text.lower().replace("-", " ").split())
    words |= {w.strip(".,!?;:()\"'") for w in words}
    return [code for code, names in SPECIES_WORDS.items() if words & set(names)]
