"""The gate's statistics streams: JSON lines, one file per pytest process.

Each process of a gate run appends records to `<run dir>/<worker id>.jsonl` (no file is
shared between processes); readers (the command line's progress and report, the workers'
view of each other's findings) follow every file incrementally. A partially written last
line is ignored until it is complete.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stream:
    """Incremental reader of every `*.jsonl` file in a directory."""

    directory: Path
    offsets: dict = field(default_factory=dict)
    records: list = field(default_factory=list)

    def poll(self) -> list:
        new = []
        for path in sorted(Path(self.directory).glob("*.jsonl")):
            start = self.offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read()
            except OSError:
                continue
            complete = data[:data.rfind(b"\n") + 1]
            self.offsets[path] = start + len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                if line.strip():
                    new.append(json.loads(line))
        self.records.extend(new)
        return new


class Writer:
    """Appends records to one process's stream file (opened on first write)."""

    def __init__(self, directory: str, name: str):
        self.path = os.path.join(directory, f"{name}.jsonl")
        self._file = None

    def write(self, record: dict) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
