"""Live catalogue facts for the answer: the caller's tenant's pets, through services.catalogue.pets.

Only questions about adopting or finding a pet touch the database; the filters come from plain
words in the question (species, "good with kids", "other pets", size, young/senior)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.database import Database
from models.enums import PetStatus
from services.catalogue import pets
from services.chat.knowledge import species_in

MAX_PETS = 5
_INTENT = re.compile(
    r"\b(adopt\w*|available|do you have|have any|any \w+ (for|to) adopt|show me|recommend\w*|"
    r"suggest\w*|looking for|catalog\w*|shelter|which (pets?|dogs?|cats?|rabbits?|birds?|"
    r"reptiles?|animals?)|good with (kids|children|other))\b",
    re.IGNORECASE,
)
_KIDS = re.compile(r"\b(kids?|child|children|toddlers?|famil(y|ies)|baby|babies)\b", re.I)
_PETS = re.compile(r"\b(other (pets|dogs|cats|animals)|good with pets|multi-pet)\b", re.I)
_SIZES = {"SMALL": r"\bsmall\b", "MEDIUM": r"\bmedium\b", "LARGE": r"\b(large|big)\b"}
_YOUNG = re.compile(r"\b(young|puppy|puppies|kittens?|baby)\b", re.I)
_SENIOR = re.compile(r"\b(senior|older|elderly)\b", re.I)


@dataclass(frozen=True)
class PetFact:
    id: str
    name: str
    species: str
    breed: str | None
    age_months: int
    size: str | None
    good_with_kids: bool | None
    good_with_pets: bool | None
    price: str
    currency: str
    description: str | None
    link: str

    def line(self) -> str:
        bits = [self.species.title()]
        if self.breed:
            bits.append(self.breed)
        bits.append(_age(self.age_months))
        if self.size:
            bits.append(self.size.lower())
        if self.good_with_kids:
            bits.append("good with kids")
        if self.good_with_pets:
            bits.append("good with other pets")
        bits.append(f"adoption fee {self.price} {self.currency}")
        text = f"**{self.name}** ({', '.join(bits)})"
        if self.description:
            text += f": {self.description.strip()}"
        return f"{text} — {self.link}"


@dataclass(frozen=True)
class CatalogueFacts:
    pets: tuple[PetFact, ...]
    total: int
    description: str  # "available cats that are good with kids"


def _age(months: int) -> str:
    if months < 24:
        return f"{months} month{'s' if months != 1 else ''}"
    return f"{months // 12} years"


def wants_catalogue(question: str) -> bool:
    return bool(_INTENT.search(question))


def query_for(question: str) -> tuple[pets.PetQuery, str]:
    species = tuple(species_in(question))
    kids = True if _KIDS.search(question) else None
    others = True if _PETS.search(question) else None
    sizes = tuple(code for code, rx in _SIZES.items() if re.search(rx, question, re.I))
    young = bool(_YOUNG.search(question))
    senior = bool(_SENIOR.search(question))
    noun = " and ".join(f"{s.lower()}s" for s in species) if species else "pets"
    words = ["available"]
    if sizes:
        words.append("/".join(s.lower() for s in sizes))
    if young:
        words.append("young")
    if senior:
        words.append("senior")
    words.append(noun)
    traits = []
    if kids:
        traits.append("good with kids")
    if others:
        traits.append("good with other pets")
    description = " ".join(words) + (f" that are {' and '.join(traits)}" if traits else "")
    query = pets.PetQuery(
        page=1,
        limit=MAX_PETS,
        species=species,
        status=(PetStatus.AVAILABLE,),
        size=sizes,
        good_with_kids=kids,
        good_with_pets=others,
        max_age=12 if young and not senior else None,
        min_age=84 if senior and not young else None,
        sort="createdAt",
        descending=True,
    )
    return query, description


async def lookup(db: Database, tenant: str, question: str, api_base: str) -> CatalogueFacts:
    """Pets of ``tenant`` matching the question (tenancy is enforced by the session)."""
    query, description = query_for(question)
    page = await pets.list_pets(db, tenant, query)
    facts = tuple(
        PetFact(
            id=str(p.id),
            name=p.name,
            species=p.species,
            breed=p.breed,
            age_months=p.age_months,
            size=p.size,
            good_with_kids=p.good_with_kids,
            good_with_pets=p.good_with_pets,
            price=f"{p.price:.2f}",
            currency=p.currency,
            description=p.description,
            link=f"{api_base}/pets/{p.id}",
        )
        for p in page.items
    )
    return CatalogueFacts(pets=facts, total=page.total, description=description)
