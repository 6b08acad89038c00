"""How the C allocator treats memory that NumPy frees (glibc only): kept for reuse.

A training step allocates the same arrays every time: values, gradients and temporaries of
a few hundred KiB to a few MiB. With glibc's default settings such arrays are mapped from
the kernel on allocation and given back on free (or given back by trimming the top of the
heap), so every step touches fresh pages again: hundreds of minor page faults per step, at
a few microseconds each, often more than the arithmetic itself. The same step in a process
where some other library happened to move glibc's thresholds did not fault at all: the
cost depended on history, not on the code.

So pygrad sets, once, at import (`mallopt`):

- `M_MMAP_THRESHOLD` = `MMAP_THRESHOLD` (32 MiB, the largest glibc accepts): arrays below
  it come from the heap, whose pages are reused, instead of a fresh mapping each time;
- `M_TRIM_THRESHOLD` = `TRIM_THRESHOLD` (128 MiB): free memory at the top of the heap is
  given back to the kernel only beyond this much.

The trade-off: a process keeps up to `TRIM_THRESHOLD` of freed memory (never more than it
once used) instead of returning it, and freed arrays below 32 MiB stay in the heap where
they may fragment it. Setting any of these stops glibc's own adjustment of the thresholds
for the rest of the process (as setting them in the environment does).

Off switches: the environment variable `PYGRAD_KEEP_FREED_MEMORY=0` before pygrad is
imported leaves the allocator untouched; `keep_freed_memory(False)` at run time sets glibc's
default values back and returns free memory to the kernel now. pygrad also leaves the
allocator alone when the environment already sets any of glibc's malloc parameters
(`MALLOC_*_` variables or `glibc.malloc` tunables): the user chose. On other C libraries
(macOS, Windows, musl) nothing is done.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

MMAP_THRESHOLD = 32 * 2 ** 20
TRIM_THRESHOLD = 128 * 2 ** 20
ENV = "PYGRAD_KEEP_FREED_MEMORY"

# mallopt parameter numbers and glibc's documented defaults (malloc.h, mallopt(3))
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_TRIM_DEFAULT, _GLIBC_MMAP_DEFAULT = 128 * 1024, 128 * 1024
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX")

_state = {"keeping": False, "reason": "not applied yet"}


def _libc():
    """glibc's handle, or None on another C library."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _set(libc, trim: int, mmap: int) -> bool:
    # mallopt returns 1 on success, 0 on error
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))


def keep_freed_memory(enable: bool = True) -> bool:
    """Keep freed memory for reuse (True) or set glibc's default thresholds back (False).

    Returns whether freed memory is now kept. Turning it off also gives free memory back to
    the kernel at once (`malloc_trim`); glibc's automatic threshold adjustment does not come
    back (only a process started with `PYGRAD_KEEP_FREED_MEMORY=0` has it)."""
    libc = _libc()
    if libc is None:
        _state.update(keeping=False, reason="not glibc: the allocator is left as it is")
        return False
    if enable:
        ok = _set(libc, TRIM_THRESHOLD, MMAP_THRESHOLD)
        _state.update(keeping=ok, reason="set by pygrad" if ok else "mallopt refused the values")
    else:
        _set(libc, _GLIBC_TRIM_DEFAULT, _GLIBC_MMAP_DEFAULT)
        libc.malloc_trim(0)
        _state.update(keeping=False, reason="switched off by keep_freed_memory(False)")
    return _state["keeping"]


def policy() -> dict:
    """{"keeping": bool, "reason": str, "mmap_threshold": bytes, "trim_threshold": bytes}: what
    pygrad did to the allocator and why."""
    return {**_state, "mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD}


def apply_at_import() -> None:
    """The import-time choice: keep freed memory unless the environment says otherwise."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        _state.update(keeping=False, reason=f"{ENV}={os.environ[ENV]}: the allocator is left as it is")
    elif any(name in os.environ for name in _USER_SETTINGS) or \
            "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        _state.update(keeping=False, reason="the environment sets malloc parameters: left as the user chose")
    else:
        keep_freed_memory(True)
