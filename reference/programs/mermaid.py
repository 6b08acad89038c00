"""A program as a Mermaid flowchart, its first wrong node marked.

GitHub renders a ```mermaid block in Markdown (job summaries, READMEs, issues), so a finding
in the gate's Markdown summary shows the program it failed on beside the pasteable test:
one box per input (name, role, shape, dtype) and per node (its pygrad code and op), an edge
per operand (numbered when a node has several), the loss nodes grey, and the first wrong
node -- the one a finding is blamed on -- in red, labelled as such.

    flowchart TD
      n_x0["x0: input (2, 3) float64"]
      n_v1["v1 = x0.relu() [relu]<br/>(2, 3) float64"]
      n_x0 --> n_v1
      class n_v1 wrong
"""
from __future__ import annotations

from reference.programs.graph import Program
from reference.programs.printer import node_code

MAX_NODES = 120      # a larger program is not drawn (GitHub stops rendering big charts)
MAX_LABEL = 70       # characters of a node's code shown in its box


def node_id(name: str) -> str:
    """The Mermaid id of program name `name` (prefixed: ids like `end` are keywords)."""
    return "n_" + "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)


def _text(s: str) -> str:
    """A label's text, safe inside a quoted Mermaid label."""
    if len(s) > MAX_LABEL:
        s = s[:MAX_LABEL - 3] + "..."
    return s.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def flowchart(prog: Program, wrong: str | None = None) -> str | None:
    """The Mermaid source of `prog`, node `wrong` (an input or node name) marked as the first
    wrong one; None when the program is too large to draw."""
    if len(prog.inputs) + len(prog.nodes) > MAX_NODES:
        return None
    lines = ["flowchart TD"]
    for i in prog.inputs:
        label = f"{i.name}: {i.role} {tuple(i.shape)} {i.dtype}" + (f" {i.layout}" if i.layout else "")
        lines.append(f'  {node_id(i.name)}["{_text(label)}{_marked(i.name, wrong)}"]')
    for n in prog.nodes:
        shape, dtype = prog.layout[n.name]
        lines.append(f'  {node_id(n.name)}["{_text(node_code(n) + f" [{n.op}]")}<br/>{shape} {dtype}'
                     f'{_marked(n.name, wrong)}"]')
    for n in prog.nodes:
        for k, o in enumerate(n.operands):
            edge = f" -->|{k}| " if len(n.operands) > 1 else " --> "
            lines.append(f"  {node_id(o)}{edge}{node_id(n.name)}")
    lines.append("  classDef wrong fill:#fdd,stroke:#c00,stroke-width:3px")
    lines.append("  classDef loss fill:#eee,stroke:#999,color:#555")
    loss = [node_id(n.name) for n in prog.nodes if n.role == "loss" and n.name != wrong]
    if loss:
        lines.append(f"  class {','.join(loss)} loss")
    if wrong is not None and wrong in prog.names:
        lines.append(f"  class {node_id(wrong)} wrong")
    return "\n".join(lines)


def _marked(name: str, wrong: str | None) -> str:
    return "<br/><b>first wrong node</b>" if name == wrong else ""
