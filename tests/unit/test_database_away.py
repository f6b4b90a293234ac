"""While PostgreSQL is down or restarting, reads answer 503 with Retry-After, never 500.

Found by the PostgreSQL fault test: during shutdown asyncpg raises CannotConnectNowError itself,
outside SQLAlchemy's wrapping, and the gateway answered 500.
"""

from __future__ import annotations

import pytest
from asyncpg.exceptions import CannotConnectNowError, ConnectionDoesNotExistError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.errors import install_error_handlers


@pytest.mark.parametrize(
    "error",
    [
        CannotConnectNowError("the database system is shutting down"),
        ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionRefusedError(111, "Connect call failed"),
    ],
)
def test_a_database_outage_is_a_503_the_client_can_retry(error: Exception) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/read")
    async def read() -> None:
        raise error

    response = TestClient(app, raise_server_exceptions=False).get("/read")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "unreachable" in response.json()["detail"] and "retry" in response.json()["detail"]


def test_other_errors_are_not_disguised_as_outages() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/read")
    async def read() -> None:
        raise ValueError("a bug")

    assert TestClient(app, raise_server_exceptions=False).get("/read").status_code == 500
