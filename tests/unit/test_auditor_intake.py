"""What the auditor writes, refuses, and retries: one bad event never stops the log, and a
database that is away is waited for, never mistaken for bad data."""

from __future__ import annotations

import json

import asyncpg
import pytest
import sqlalchemy.exc

from services.auditor.consumer import intake, refused_as_data, unstorable
from shared.events import IntentReceived, IntentReceivedData
from shared.identity import TrustedSigners
from tests.infra import IDENTITIES, signed

TRUSTED = TrustedSigners.from_file(IDENTITIES / "signers.json")


def event(command: str = "deploy llama 3.1 8b for x") -> IntentReceived:
    return IntentReceived(plan_id="p1", actor="alice", data=IntentReceivedData(command=command, user_id="alice"))


def dbapi(orig: BaseException) -> sqlalchemy.exc.DBAPIError:
    return sqlalchemy.exc.DBAPIError("INSERT ...", {}, orig)


class WithState(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "exc",
    [
        dbapi(WithState("22P05")),  # untranslatable character (a NUL in jsonb)
        dbapi(WithState("54000")),  # program limit exceeded (too large)
        dbapi(WithState("23505")),  # integrity
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        KeyError("data"),  # a fold that cannot take the event
    ],
)
def test_what_the_events_hold_is_refused_as_data(exc: BaseException) -> None:
    assert refused_as_data(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        dbapi(WithState("57P01")),  # admin shutdown
        dbapi(WithState("08006")),  # connection failure
        dbapi(WithState("40001")),  # serialization failure
        dbapi(WithState("42501")),  # a privilege missing: wait (and show the lag), never drop events
        sqlalchemy.exc.OperationalError("SELECT 1", {}, OSError("gone")),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        asyncpg.InterfaceError("connection is closed"),
    ],
)
def test_a_database_that_is_away_is_waited_for(exc: BaseException) -> None:
    assert not refused_as_data(exc)


def test_an_authentic_event_is_taken_with_its_signer() -> None:
    sent = signed(event(), "gateway")
    item, problem = intake(TRUSTED, sent["message"], "agentops.intent.received", sent["headers"])
    assert problem is None and item is not None
    assert item.signer == "gateway" and item.canonical.encode() == sent["message"]


def test_an_event_not_in_canonical_form_is_refused() -> None:
    sent = signed(event(), "gateway")
    spaced = sent["message"].replace(b'","', b'", "', 1)
    from tests.infra import SIGNERS

    headers = {**sent["headers"], **SIGNERS["gateway"].sign(spaced)}
    item, problem = intake(TRUSTED, spaced, "agentops.intent.received", headers)
    assert item is None and problem is not None and "canonical" in problem


def test_an_authentic_event_the_database_cannot_store_is_refused() -> None:
    sent = signed(event("deploy x\x00y"), "gateway")
    item, problem = intake(TRUSTED, sent["message"], "agentops.intent.received", sent["headers"])
    assert item is None and problem is not None and "NUL" in problem


def test_unstorable_names_where() -> None:
    assert (
        unstorable({"a": [{"b": "ok"}, {"c": "x\ud800"}]})
        == "event.a[1].c holds a lone surrogate, which is not valid Unicode"
    )
    assert unstorable({"a": 1, "b": ["fine"]}) is None


def test_jsonb_text_is_json_and_leaves_what_postgres_refuses_for_postgres_to_refuse() -> None:
    from shared.db import jsonb_text

    value = {"b": [1, 2.5, None, True], "a": "é\u2028", "n": 12345678901234567890}
    assert json.loads(jsonb_text(value)) == value
    assert jsonb_text({"x": float("inf")}) == '{"x":Infinity}'  # refused by jsonb, as before
    assert jsonb_text({"s": "\ud800"}) == '{"s": "\\ud800"}'  # the escape jsonb refuses as data
