"""The digits examples run end to end: `--quick` trains a few epochs, the loss goes down,
and the plot is written as a PNG."""
import importlib.util
from pathlib import Path

import pytest

# The examples need the `examples` extra (pip install -e ".[examples]"), which the `test` extra
# does not pull in: skip rather than fail where it is not installed.
for extra in ("sklearn", "matplotlib", "tqdm"):
    pytest.importorskip(extra, reason=f"{extra} missing: the digits examples need the `examples` extra")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_example(name: str, monkeypatch):
    """Import examples/<name>.py as a module; its `from _digits import ...` needs examples/ on sys.path."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["mnist_like_mlp", "digits_cnn"])
def test_quick_run_trains_and_plots(name, tmp_path, monkeypatch):
    out = tmp_path / f"{name}.png"
    result = load_example(name, monkeypatch).main(["--quick", "--out", str(out)])

    losses = result["losses"]
    assert len(losses) >= 2
    assert losses[-1] < losses[0], f"{name}: training loss did not go down: {losses}"
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["test_accuracy"] > 0.5, f"{name}: quick run near chance: {result['test_accuracy']:.2%}"
    assert Path(result["png"]) == out
    data = out.read_bytes()
    assert len(data) > len(PNG_MAGIC) and data.startswith(PNG_MAGIC)
