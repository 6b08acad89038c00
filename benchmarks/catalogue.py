"""Every workload of the report, in report order."""
from __future__ import annotations

from benchmarks import contests, memory, probes
from benchmarks.core import Workload

ORDER = ("elementwise_chain", "mlp_step", "conv2d", "softmax", "module_mlp_step",
         "import_time", "memory", "check_scaling")
CONTESTS = ORDER[:5]


def workloads() -> list[Workload]:
    found = {w.id: w for module in (contests, memory, probes) for w in module.WORKLOADS}
    return [found[name] for name in ORDER]
