"""Shared test set-up: every async test runs on asyncio through anyio's pytest plugin."""

from __future__ import annotations

import os

import pytest

if "MUTANT_UNDER_TEST" in os.environ:  # `make mutate`: mutmut's trampolines wrap the code
    from hypothesis import HealthCheck, settings

    # ... so hypothesis sees one test called through different executors; harmless there.
    settings.register_profile(
        "mutmut", suppress_health_check=[HealthCheck.differing_executors], database=None)
    settings.load_profile("mutmut")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
