"""Ten synthetic fingers of one person, with realistic pattern classes and finger sizes.

Pattern classes are drawn per finger position from frequencies like those of real populations:
loops about 65 % (nearly all ulnar: opening towards the little finger, so right loops on the
right hand and left loops on the left hand; radial loops mostly on index fingers), whorls about
30 % (most on thumbs and ring fingers), arches about 5 % (most on index fingers). A person-level
factor tilts all ten fingers towards or away from whorls, as on real hands. Thumbs are the
largest masters, little fingers the smallest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from appliance.domain import Position
from drivers.synthetic.master import MasterFinger, generate_master
from drivers.synthetic.orientation import FingerClass

# per finger (thumb, index, middle, ring, little): whorl, ulnar loop, radial loop, arch, tented
_CLASS_TABLE = {
    "thumb": (0.40, 0.55, 0.01, 0.02, 0.02),
    "index": (0.30, 0.38, 0.17, 0.07, 0.08),
    "middle": (0.22, 0.70, 0.03, 0.03, 0.02),
    "ring": (0.40, 0.55, 0.02, 0.02, 0.01),
    "little": (0.15, 0.82, 0.01, 0.01, 0.01),
}
_FINGERS = ("thumb", "index", "middle", "ring", "little")
#: Master size (width, height) per finger at 500 ppi, before the person's own scale.
FINGER_SIZES = {
    "thumb": (640, 720),
    "index": (560, 640),
    "middle": (576, 672),
    "ring": (544, 640),
    "little": (480, 560),
}


def finger_name(position: Position) -> str:
    """'thumb', 'index', 'middle', 'ring' or 'little' for a rolled position 1..10."""
    if not 1 <= int(position) <= 10:
        raise ValueError(f"position {int(position)} is not a single finger")
    return _FINGERS[(int(position) - 1) % 5]


def is_right(position: Position) -> bool:
    """True for the right hand's fingers (positions 1..5)."""
    return 1 <= int(position) <= 5


@dataclass(frozen=True, eq=False)
class Hand:
    """Both hands of one synthetic person: ten masters, looked up by position 1..10."""

    seed: int
    fingers: tuple[MasterFinger, ...]

    @classmethod
    def generate(cls, seed: int) -> Hand:
        """The ten fingers of person ``seed`` (same seed, same fingers)."""
        return cls(seed=int(seed), fingers=tuple(generate_hand(seed)))

    def __getitem__(self, position: int | Position) -> MasterFinger:
        """The master at finger position 1..10."""
        if not 1 <= int(position) <= 10:
            raise KeyError(position)
        return self.fingers[int(position) - 1]

    def __iter__(self) -> Iterator[MasterFinger]:
        return iter(self.fingers)

    def __len__(self) -> int:
        return len(self.fingers)


def generate_hand(seed: int) -> list[MasterFinger]:
    """Ten distinct masters of person ``seed``; item ``i`` is finger position ``i + 1``."""
    classes, scale = _person(seed)
    fingers = []
    for p, finger_class in enumerate(classes, start=1):
        w, h = FINGER_SIZES[finger_name(Position(p))]
        size = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
        finger_seed = int(np.random.SeedSequence([int(seed) % (1 << 64), p]).generate_state(1)[0])
        fingers.append(generate_master(finger_seed, finger_class, size, Position(p)))
    return fingers


def hand_classes(seed: int) -> list[FingerClass]:
    """The pattern classes of person ``seed``'s fingers 1..10, without drawing any ridges."""
    return _person(seed)[0]


def _person(seed: int) -> tuple[list[FingerClass], float]:
    """Pattern classes and size scale of person ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % (1 << 64), 0x4A4D]))
    scale = rng.uniform(0.93, 1.07)
    whorl_bias = math.exp(0.6 * rng.standard_normal())
    classes = [
        _draw_class(rng, finger_name(Position(p)), is_right(Position(p)), whorl_bias)
        for p in range(1, 11)
    ]
    return classes, scale


def _draw_class(rng: np.random.Generator, name: str, right: bool, whorl_bias: float) -> FingerClass:
    whorl, ulnar, radial, arch, tented = _CLASS_TABLE[name]
    p = np.array([whorl * whorl_bias, ulnar, radial, arch, tented])
    k = int(rng.choice(5, p=p / p.sum()))
    ulnar_class = FingerClass.RIGHT_LOOP if right else FingerClass.LEFT_LOOP
    radial_class = FingerClass.LEFT_LOOP if right else FingerClass.RIGHT_LOOP
    return (
        FingerClass.WHORL,
        ulnar_class,
        radial_class,
        FingerClass.ARCH,
        FingerClass.TENTED_ARCH,
    )[k]
