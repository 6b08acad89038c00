"""pytest plugin for checking your own code (entry point `reference.usercheck.fixtures`,
active once pygrad is installed).

    from hypothesis import given
    from reference import strategies as rs

    @given(rs.tensors((3,)))
    def test_softplus(gradcheck, x):
        assert gradcheck(softplus, x)

- fixtures `gradcheck` and `check_module`: `reference.gradcheck` / `reference.check_module`.
  Inside a hypothesis test, an example at a kink (`KinkError`: finite differences cannot
  judge it) is rejected with `hypothesis.reject()`, as the suite does with examples its
  oracles cannot judge, instead of failing; outside one it raises.
- when `HYPOTHESIS_PROFILE` names one of the hypothesis profiles `dev`, `ci`, `thorough`
  (`reference.profiles`), they are registered and that one is loaded; otherwise the plugin
  changes nothing for a project and imports nothing heavy: not hypothesis (call
  `reference.profiles.register()` to use the profiles by name), nor torch or pygrad, which
  the fixtures import on first use.
"""
from __future__ import annotations

import pytest


def pytest_configure(config):
    from reference import profiles
    if not profiles.in_xdist_controller(config):
        profiles.load(default=None)


def _rejecting_kinks(check):
    def run(*args, **kwargs):
        import hypothesis
        from reference.usercheck.errors import KinkError
        try:
            return check(*args, **kwargs)
        except KinkError as e:
            if not hypothesis.currently_in_test_context():
                raise
            hypothesis.note(f"rejected: {e}")
            hypothesis.reject()
    run.__doc__ = check.__doc__
    run.__name__ = check.__name__
    return run


@pytest.fixture(scope="session")
def gradcheck():
    """`reference.gradcheck`; an example at a kink is rejected inside a hypothesis test."""
    from reference.usercheck.functions import gradcheck as check
    return _rejecting_kinks(check)


@pytest.fixture(scope="session")
def check_module():
    """`reference.check_module`; an example at a kink is rejected inside a hypothesis test."""
    from reference.usercheck.modules import check_module as check
    return _rejecting_kinks(check)
