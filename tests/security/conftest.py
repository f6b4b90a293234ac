"""Security tests run against servers of their own that enforce what production enforces: a
nats-server admitting only the AgentOps identities (even when AGENTOPS_TEST_NATS_URL points at an
open server), PostgreSQL with one login per service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import secured_nats_server


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[str]:
    with secured_nats_server(tmp_path / "secured-nats") as url:
        yield url


from tests.integration.conftest import system  # noqa: E402,F401  (the whole system, as a fixture here too)
