"""The synthetic world: part types, affordances and object categories built from them.

Part types look the same (shape and texture cues) in every category, and each
affordance acts on one part type, so knowledge transfers to unseen categories. Every
category offers at least two affordances on different parts: the image alone cannot say
which region is meant, only the sound can.
"""

from __future__ import annotations

from dataclasses import dataclass

# affordance -> (function part type, default dependency part type or None)
AFFORDANCES: dict[str, tuple[str, str | None]] = {
    "cut": ("blade", "handle"),
    "hit": ("head", "handle"),
    "twist": ("knob", "body"),
    "press": ("button", None),
    "roll": ("wheel", "handle"),
    "open": ("lid", "body"),
    "pour": ("spout", "body"),
    "zip": ("zipper", "body"),
}

PART_TYPES = (
    "body",
    "handle",
    "blade",
    "head",
    "knob",
    "button",
    "wheel",
    "lid",
    "spout",
    "zipper",
)


@dataclass(frozen=True)
class Part:
    """One part in object-local units (the object spans about [-1, 1])."""

    kind: str  # part type, one of PART_TYPES
    shape: str  # rect | ellipse | triangle | trapezoid
    cx: float
    cy: float
    hw: float  # half width
    hh: float  # half height
    angle: float = 0.0  # degrees, relative to the object


@dataclass(frozen=True)
class Category:
    name: str
    parts: tuple[Part, ...]
    affordances: tuple[str, ...]
    # Per-category override of an affordance's dependency part ("" = no dependency).
    dependency: tuple[tuple[str, str], ...] = ()

    def dependency_of(self, affordance: str) -> str | None:
        for aff, dep in self.dependency:
            if aff == affordance:
                return dep or None
        return AFFORDANCES[affordance][1]


P = Part
SEEN: tuple[Category, ...] = (
    Category(
        "kettle",
        (
            P("body", "ellipse", 0.0, 0.15, 0.62, 0.55),
            P("lid", "rect", 0.0, -0.5, 0.42, 0.14),
            P("spout", "trapezoid", 0.78, -0.05, 0.3, 0.14, -30),
            P("handle", "rect", -0.78, 0.05, 0.13, 0.42),
        ),
        ("pour", "open"),
    ),
    Category(
        "pump_bottle",
        (
            P("body", "rect", 0.0, 0.25, 0.4, 0.7),
            P("knob", "ellipse", 0.0, -0.65, 0.27, 0.27),
            P("button", "rect", 0.0, 0.3, 0.22, 0.22),
        ),
        ("twist", "press"),
    ),
    Category(
        "cart",
        (
            P("body", "rect", 0.1, -0.1, 0.75, 0.42),
            P("lid", "rect", 0.1, -0.62, 0.7, 0.12),
            P("wheel", "ellipse", -0.35, 0.5, 0.25, 0.25),
            P("wheel", "ellipse", 0.55, 0.5, 0.25, 0.25),
            P("handle", "rect", -0.82, -0.5, 0.1, 0.42, 25),
        ),
        ("roll", "open"),
    ),
    Category(
        "axe",
        (
            P("handle", "rect", 0.0, 0.25, 0.12, 0.8),
            P("head", "rect", -0.12, -0.62, 0.3, 0.22),
            P("blade", "trapezoid", 0.45, -0.62, 0.28, 0.32, 90),
        ),
        ("cut", "hit"),
    ),
    Category(
        "bag",
        (
            P("body", "rect", 0.0, 0.2, 0.8, 0.58),
            P("zipper", "rect", 0.0, -0.22, 0.72, 0.13),
            P("handle", "rect", 0.0, -0.62, 0.4, 0.11),
            P("button", "ellipse", 0.0, 0.42, 0.2, 0.2),
        ),
        ("zip", "press"),
        (("press", "body"),),
    ),
    Category(
        "radio",
        (
            P("body", "rect", 0.0, 0.0, 0.9, 0.55),
            P("knob", "ellipse", 0.5, 0.05, 0.26, 0.26),
            P("button", "rect", -0.45, -0.12, 0.2, 0.2),
            P("handle", "rect", 0.0, -0.68, 0.55, 0.1),
        ),
        ("twist", "press"),
    ),
    Category(
        "suitcase",
        (
            P("body", "rect", 0.0, 0.0, 0.6, 0.72),
            P("zipper", "rect", 0.44, 0.0, 0.13, 0.62),
            P("wheel", "ellipse", -0.38, 0.82, 0.17, 0.17),
            P("wheel", "ellipse", 0.38, 0.82, 0.17, 0.17),
            P("handle", "rect", 0.0, -0.85, 0.28, 0.1),
        ),
        ("roll", "zip"),
    ),
    Category(
        "blender",
        (
            P("body", "rect", 0.0, 0.1, 0.45, 0.6),
            P("lid", "rect", 0.0, -0.62, 0.5, 0.13),
            P("knob", "ellipse", 0.0, 0.75, 0.22, 0.22),
            P("spout", "trapezoid", 0.55, -0.35, 0.22, 0.12, -20),
        ),
        ("open", "twist", "pour"),
    ),
    Category(
        "pocket_knife",
        (
            P("handle", "rect", -0.4, 0.0, 0.58, 0.25),
            P("blade", "triangle", 0.55, 0.0, 0.45, 0.25),
            P("button", "ellipse", -0.4, 0.0, 0.16, 0.16),
        ),
        ("cut", "press"),
        (("press", "handle"),),
    ),
)

UNSEEN: tuple[Category, ...] = (
    Category(
        "toolbox",
        (
            P("body", "rect", 0.0, 0.1, 0.85, 0.5),
            P("lid", "rect", 0.0, -0.5, 0.85, 0.13),
            P("handle", "rect", 0.0, -0.78, 0.35, 0.1),
            P("wheel", "ellipse", -0.6, 0.7, 0.2, 0.2),
            P("wheel", "ellipse", 0.6, 0.7, 0.2, 0.2),
        ),
        ("open", "roll"),
    ),
    Category(
        "mallet",
        (
            P("handle", "rect", 0.0, 0.2, 0.13, 0.78),
            P("head", "rect", 0.0, -0.68, 0.5, 0.24),
            P("button", "ellipse", 0.0, 0.45, 0.15, 0.15),
        ),
        ("hit", "press"),
    ),
    Category(
        "thermos",
        (
            P("body", "rect", 0.0, 0.2, 0.38, 0.72),
            P("knob", "ellipse", 0.0, -0.65, 0.3, 0.3),
            P("spout", "trapezoid", 0.5, -0.48, 0.2, 0.1, -25),
        ),
        ("twist", "pour"),
    ),
    Category(
        "grinder",
        (
            P("body", "ellipse", 0.0, 0.0, 0.55, 0.55),
            P("knob", "ellipse", 0.0, -0.72, 0.22, 0.22),
            P("blade", "triangle", 0.78, 0.3, 0.3, 0.12, 20),
            P("zipper", "rect", 0.0, 0.35, 0.45, 0.12),
        ),
        ("twist", "cut", "zip"),
        (("cut", "body"),),
    ),
)


def all_categories() -> tuple[Category, ...]:
    return SEEN + UNSEEN


def _check() -> None:
    """The world's promises, checked at import so an edit cannot silently break them."""
    seen_affs = {a for c in SEEN for a in c.affordances}
    seen_parts = {p.kind for c in SEEN for p in c.parts}
    for cat in all_categories():
        kinds = {p.kind for p in cat.parts}
        assert len(cat.affordances) >= 2, cat.name
        funcs = {AFFORDANCES[a][0] for a in cat.affordances}
        assert len(funcs) == len(cat.affordances), f"{cat.name}: two affordances share a part"
        for aff in cat.affordances:
            assert AFFORDANCES[aff][0] in kinds, (cat.name, aff)
            dep = cat.dependency_of(aff)
            assert dep is None or dep in kinds, (cat.name, aff, dep)
    for cat in UNSEEN:
        assert set(cat.affordances) <= seen_affs, cat.name
        assert {p.kind for p in cat.parts} <= seen_parts, cat.name
    assert not {c.name for c in SEEN} & {c.name for c in UNSEEN}


_check()
