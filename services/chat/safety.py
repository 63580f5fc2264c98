"""Safety rules that run before any answer is composed: emergencies first, no prompt leaks.

Both are deliberately keyword based (deterministic, testable, no model needed); they err on the
side of sending someone to a veterinarian."""

from __future__ import annotations

import re
from dataclasses import dataclass

# (pattern, what we call it in the answer). Word boundaries; case-insensitive.
_EMERGENCIES: tuple[tuple[str, str], ...] = (
    (r"\bpoisoned\b|antifreeze|rat bait|rodenticide|slug pellets?", "possible poisoning"),
    (
        r"\b(ate|eaten|eat|swallowed|chewed|licked|got into)\b.{0,40}\b(chocolate|xylitol|"
        r"grapes?|raisins?|lil(y|ies)|ibuprofen|paracetamol|acetaminophen|medication|pills?|"
        r"poison\w*|bleach|detergent)\b",
        "possible poisoning",
    ),
    (
        r"\b(chocolate|xylitol|grapes?|raisins?|lil(y|ies))\b.{0,40}\b(ate|eaten|swallowed|"
        r"chewed)\b",
        "possible poisoning",
    ),
    (
        r"not breathing|isn'?t breathing|stopped breathing|can'?t breathe|cannot breathe|"
        r"struggling to breathe|difficulty breathing|choking|gasping|blue gums",
        "breathing trouble",
    ),
    (r"seizures?|seizing|convuls\w*", "a seizure"),
    (
        r"\bbloat\w*|swollen (belly|stomach|abdomen)|distended|retching|dry heav\w*|gdv\b",
        "possible bloat (GDV)",
    ),
    (
        r"bleeding (heavily|a lot|badly|profusely)|heavy bleeding|won'?t stop bleeding|"
        r"blood everywhere|spurting",
        "heavy bleeding",
    ),
    (r"collaps\w*|unconscious|unresponsive|won'?t wake|passed out", "collapse"),
    (r"hit by a car|run over|fell from|fallen from|broken (leg|bone)", "serious injury"),
    (r"heat ?stroke|overheat\w*|left in (a|the) (hot )?car", "heatstroke"),
    (
        r"can'?t (pee|urinate)|cannot (pee|urinate)|straining to (pee|urinate)|no urine|"
        r"blocked (cat|bladder)",
        "a urinary blockage",
    ),
    (r"snake ?bite|bitten by a snake|bee stings?.{0,20}swell\w*", "a bite or sting reaction"),
)
_EMERGENCY_RES = tuple(
    (re.compile(p, re.IGNORECASE | re.DOTALL), label) for p, label in _EMERGENCIES
)

_PROMPT_PROBES = re.compile(
    r"(system|hidden|initial|original|developer)\s+(prompt|message|instructions?)|"
    r"(ignore|disregard|forget)\s+(all\s+|any\s+|the\s+|your\s+)*(previous|prior|above|earlier)|"
    r"(repeat|print|show|reveal|output|tell me)\s+.{0,30}(instructions|prompt|rules)|"
    r"you are now|jailbreak|\bDAN\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Emergency:
    labels: tuple[str, ...]

    def notice(self) -> str:
        what = " and ".join(dict.fromkeys(self.labels))
        return (
            f"**This may be an emergency ({what}). Contact a veterinarian or an emergency animal "
            "hospital now**; if poisoning is possible, also call an animal poison control line. "
            "Do not wait to see whether it gets better, and do not induce vomiting unless a "
            "veterinarian tells you to.\n\n"
        )


def emergency(text: str) -> Emergency | None:
    labels = tuple(label for regex, label in _EMERGENCY_RES if regex.search(text))
    return Emergency(labels) if labels else None


def probes_prompt(text: str) -> bool:
    """Does the message try to read or override the server's instructions?"""
    return bool(_PROMPT_PROBES.search(text))


REFUSAL = (
    "I can't share or change my instructions, and I never reveal other people's "
    "conversations or accounts. I'm happy to help with pet care or adoption questions, "
    "for example feeding, vaccinations, house-training or which of our pets might suit you."
)
