"""Synthetic fingerprints: master fingers, flat and rolled impressions, live rolls and slaps.

The ten-print livescan emulator, the tests and the model training all draw their prints from
here. Everything is numpy only and deterministic: the same seed gives the same finger, and the
same ``numpy.random.Generator`` state the same impression. Minutiae are true by construction,
in the ISO/IEC 19794-2 convention of :class:`appliance.domain.Minutia`.

Typical use::

    hand = Hand.generate(seed=7)
    rng = np.random.default_rng(1)
    rolled = hand[Position.RIGHT_INDEX].impression(rng, rolled=True)
    four = slap([hand[p] for p in SLAP_FINGERS[Position.PLAIN_RIGHT_FOUR]], rng)
"""

from drivers.synthetic.contact import Contact, ContactMode
from drivers.synthetic.hand import Hand, generate_hand, hand_classes
from drivers.synthetic.impression import SyntheticImpression, rolled_sequence
from drivers.synthetic.master import MasterFinger, generate_master
from drivers.synthetic.orientation import FingerClass, OrientationModel, poincare_singularities
from drivers.synthetic.slap import PLATEN_SIZE, FingerBox, SyntheticSlap, slap

__all__ = [
    "PLATEN_SIZE",
    "Contact",
    "ContactMode",
    "FingerBox",
    "FingerClass",
    "Hand",
    "MasterFinger",
    "OrientationModel",
    "SyntheticImpression",
    "SyntheticSlap",
    "generate_hand",
    "generate_master",
    "hand_classes",
    "poincare_singularities",
    "rolled_sequence",
    "slap",
]
