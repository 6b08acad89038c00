"""pygrad.allocator: freed memory is kept for reuse on glibc, and every off switch works.

Each case runs in a fresh interpreter: the allocator's settings belong to the process. The
signal is the count of minor page faults (fresh pages from the kernel) while arrays of 1 MiB
are allocated, written and freed over and over -- deterministic, unlike a timing."""
import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

PROBE = """
import resource, sys
import numpy as np
{setup}
from pygrad import allocator
{after}
def faults(rounds=50):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        a = np.ones(2 ** 17)          # 1 MiB, written
        b = np.ones(2 ** 17)
        del a, b
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds
faults(5)
print(faults(), allocator.policy()["keeping"], allocator.policy()["reason"])
"""


def _probe(setup="import pygrad", after="", **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    full.pop("PYGRAD_KEEP_FREED_MEMORY", None)
    full.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup, after=after)],
                          capture_output=True, text=True, env=full, timeout=120, check=True)
    per_round, keeping, reason = done.stdout.split(maxsplit=2)
    return float(per_round), keeping == "True", reason.strip()


@pytest.mark.skipif(not GLIBC, reason="the policy applies to glibc only")
def test_importing_pygrad_keeps_freed_arrays_for_reuse():
    per_round, keeping, reason = _probe()
    assert keeping and reason == "set by pygrad"
    assert per_round < 1        # the same pages again: no fresh page per allocation


@pytest.mark.skipif(not GLIBC, reason="the policy applies to glibc only")
def test_the_environment_switch_leaves_the_allocator_alone():
    per_round, keeping, reason = _probe(PYGRAD_KEEP_FREED_MEMORY="0")
    assert not keeping and "PYGRAD_KEEP_FREED_MEMORY=0" in reason
    assert per_round > 200      # 2 MiB of fresh pages per round: 512 faults of 4 KiB each


@pytest.mark.skipif(not GLIBC, reason="the policy applies to glibc only")
def test_switching_off_at_run_time_restores_glibc_defaults():
    per_round, keeping, reason = _probe(after="allocator.keep_freed_memory(False)")
    assert not keeping and "keep_freed_memory(False)" in reason
    assert per_round > 200


@pytest.mark.skipif(not GLIBC, reason="the policy applies to glibc only")
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "1000000"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=200000"}])
def test_malloc_settings_of_the_user_are_respected(env):
    _, keeping, reason = _probe(**env)
    assert not keeping and "user" in reason


@pytest.mark.skipif(GLIBC, reason="checks the behaviour off glibc")
def test_other_c_libraries_are_left_alone():   # pragma: no cover - runs on macOS/Windows/musl
    from pygrad import allocator
    assert not allocator.keep_freed_memory(True)
    assert "not glibc" in allocator.policy()["reason"]
