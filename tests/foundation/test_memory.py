"""The allocator setting that keeps freed image-sized arrays from staying resident (glibc)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from appliance.system.memory import fix_mmap_threshold

CHILD = """
import sys
import numpy as np
from appliance.system.memory import fix_mmap_threshold

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

took = fix_mmap_threshold(int(sys.argv[1]))
big = np.ones(8 << 20, np.uint8)  # an 8 MiB array, freed: glibc's default raises its threshold
del big
arrays = [np.ones(1 << 20, np.uint8) for _ in range(120)]  # image-sized arrays, 1 MiB each
before = rss_mb()
del arrays[::2]  # free every other one: holes in the heap unless they were mmapped
print(took, before - rss_mb())
"""


def released_mb(kib: int) -> tuple[bool, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(kib)], capture_output=True,
                         text=True, check=True)
    took, released = out.stdout.split()
    return took == "True", float(released)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt's mmap threshold is a glibc setting")
def test_fixed_threshold_gives_freed_arrays_back() -> None:
    took, released = released_mb(128)
    assert took
    assert released > 40  # the 60 freed MiB left the process
    took, released = released_mb(0)  # glibc's default: the freed arrays stay resident
    assert not took
    assert released < 20


def test_zero_leaves_the_allocator_alone() -> None:
    assert fix_mmap_threshold(0) is False
