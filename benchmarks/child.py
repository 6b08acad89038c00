"""`python -m benchmarks.child`: one framework's step of one workload, timed in this fresh
interpreter on request of the parent (`benchmarks.runner`).

It imports only its own framework (pygrad is never timed where torch has run) and answers
one JSON object per line on stdin with one JSON line on stdout:

- {"op": "build", "framework", "workload", "params", "threads"} -> {"ok": true, "info": {...}}
  or {"ok": false, "unavailable": why}; builds the step and runs it once.
- {"op": "observe", "path"} -> writes the step's arrays (`Bench.observe`) to an .npz file.
- {"op": "calibrate", "target_s"} -> {"number": calls that make one sample of about target_s}.
- {"op": "sample", "number"} -> {"seconds", "faults" (minor page faults), "cpu_seconds"}, per call.
- {"op": "peaks", "steps"} -> {"peaks": tracemalloc peak of each of `steps` steps, bytes}.
- {"op": "quit"}.

Timing follows `benchmarks.timing`: the cyclic collector stays on (collecting graphs is part
of a step), a collection before each sample. Minor page faults are counted with getrusage
over the whole process (every thread), so fresh memory asked of the kernel shows per step.
"""
from __future__ import annotations

import json
import os
import sys
import traceback


def _build(msg: dict):
    from benchmarks.core import NotAvailable
    from benchmarks.environment import apply_threads
    from benchmarks.steps import builders

    threads = apply_threads(msg.get("threads"), torch=msg["framework"] == "torch")
    try:
        build = builders(msg["framework"])[msg["workload"]]
        bench = build(**msg.get("params", {}))
        bench.step()
    except NotAvailable as exc:
        return None, {"ok": False, "unavailable": str(exc)}
    except ImportError as exc:
        return None, {"ok": False, "unavailable": f"{type(exc).__name__}: {exc}"}
    info = {"threads": threads, "torch_imported": "torch" in sys.modules, "pid": os.getpid()}
    if msg["framework"] == "pygrad":
        import pygrad
        info["pygrad"] = pygrad.__file__
        allocator = getattr(pygrad, "allocator", None)
        info["allocator"] = allocator.policy() if allocator else None
    return bench, {"ok": True, "info": info}


def serve(lines, reply) -> None:
    """Answer each command of `lines`; `reply(dict)` sends an answer."""
    import numpy as np

    from benchmarks.timing import calls_per_sample, peaks, sample

    bench = None
    for line in lines:
        msg = json.loads(line)
        op = msg["op"]
        try:
            if op == "quit":
                return
            if op == "build":
                bench, answer = _build(msg)
            elif op == "observe":
                np.savez(msg["path"], *[np.asarray(a) for a in bench.observe()])
                answer = {"ok": True}
            elif op == "calibrate":
                answer = {"number": calls_per_sample(bench.step, msg["target_s"])}
            elif op == "sample":
                seconds, faults, cpu = sample(bench.step, msg["number"])
                answer = {"seconds": seconds, "faults": faults, "cpu_seconds": cpu}
            elif op == "peaks":
                answer = {"peaks": peaks(bench.step, msg["steps"])}
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception:  # noqa: BLE001 - reported to the parent, which makes it the row's error
            answer = {"error": traceback.format_exc()}
        reply(answer)


def main() -> None:
    channel = sys.stdout
    sys.stdout = sys.stderr       # anything a framework prints must not break the protocol

    def reply(answer: dict) -> None:
        channel.write(json.dumps(answer) + "\n")
        channel.flush()
    serve(sys.stdin, reply)


if __name__ == "__main__":
    main()
