"""The CI example (`examples/ci/pygrad-gate.yml`) runs the gate sharded and merges: every
`pygrad-check` command in it parses with the gate's own parsers, the shards cover 1..N, and
the merge step needs neither torch nor pygrad's tests."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

from reference.gate.cli import merge_parser, parse_shard, parser

WORKFLOW = Path(__file__).resolve().parent.parent / "examples" / "ci" / "pygrad-gate.yml"


def commands() -> list:
    """The folded (`run: >-`) pygrad-check commands of the workflow, as argument lists."""
    lines = WORKFLOW.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() == "run: >-":
            indent = len(line) - len(line.lstrip())
            body = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                body.append(nxt.strip())
            text = " ".join(body)
            if text.startswith("pygrad-check"):
                out.append(shlex.split(text.replace("$SEED", "7").replace("$SHARD/$SHARDS", "2/3")
                                       .replace("$SHARD", "2").replace("$GITHUB_STEP_SUMMARY", "summary.md"))[1:])
    return out


def test_the_workflow_runs_a_sharded_gate_and_merges():
    cmds = commands()
    gate = [c for c in cmds if c[:1] != ["merge"]]
    merge = [c for c in cmds if c[:1] == ["merge"]]
    assert len(gate) == 1 and len(merge) == 1
    args = parser().parse_args(gate[0])
    assert parse_shard(args.shard) == (2, 3) and args.seed == 7 and args.json is not None
    margs = merge_parser().parse_args(merge[0][1:])
    assert margs.markdown == Path("summary.md") and margs.json is not None
    matrix = re.search(r"shard: \[([0-9, ]+)\]", WORKFLOW.read_text()).group(1)
    shards = re.search(r'SHARDS: "(\d+)"', WORKFLOW.read_text()).group(1)
    assert [int(s) for s in matrix.split(",")] == list(range(1, int(shards) + 1))


def test_merging_imports_neither_torch_nor_numpy():
    code = ("import sys; from reference.gate.cli import main; main(['merge', '--help']); "
            "print(sorted(m for m in ('torch', 'numpy', 'pygrad', 'hypothesis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
