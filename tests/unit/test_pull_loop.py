"""A pull loop whose broker is away retries every second until it is back, and says so once: the
first failure with its traceback, then nothing per retry (every service runs several loops, and an
outage of a minute was hundreds of tracebacks), then that it consumes again."""

from __future__ import annotations

import logging

import pytest

from services.runtime import ordered
from services.runtime.ordered import PullLoop


class Flaky(PullLoop):
    """Fails `failures` turns, then goes through twice and stops."""

    durable = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures, self.turns = failures, 0

    async def _loop(self) -> None:
        self.turns += 1
        if self.turns <= self.failures:
            self.sub = object()  # bound, as a real loop would be before the connection dropped
            raise ConnectionError("the broker is away")
        if self.turns == self.failures + 2:
            self.stopping = True


async def test_an_outage_is_logged_once_and_the_recovery_said(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ordered, "RETRY_SECONDS", 0.0)
    loop = Flaky(failures=30)
    with caplog.at_level(logging.DEBUG, logger="agentops.ordered"):
        await loop.run()
    assert loop.turns == 32 and loop.sub is None  # each failure rebinds the subscription
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelname, r.getMessage()) for r in loud] == [
        ("ERROR", "flaky: consuming failed; retrying every 0.0s"),
        ("WARNING", "flaky: consuming again"),
    ]
    assert loud[0].exc_info is not None  # what went wrong, once
