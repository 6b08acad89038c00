"""Breaking pygrad in-process for tests of the suite's checks."""
import pytest

from pygrad import Tensor


def break_backward(monkeypatch, name, rule):
    """Make Tensor.<name>'s backward rule send `rule(g)` instead of g."""
    original = getattr(Tensor, name)

    def broken(*args, **kwargs):
        out = original(*args, **kwargs)
        right = out._backward
        out._backward = lambda g: right(rule(g))
        return out
    monkeypatch.setattr(Tensor, name, broken)


def assert_reproducer_catches(reproducer: str, monkeypatch) -> None:
    """The test a finding printed fails on the pygrad `monkeypatch` broke, and passes once it
    is undone."""
    namespace: dict = {}
    exec(compile(reproducer, "<reproducer>", "exec"), namespace)  # noqa: S102 - the suite's own output
    test = next(fn for key, fn in namespace.items() if key.startswith("test_"))
    with pytest.raises(AssertionError):
        test()
    monkeypatch.undo()
    test()
