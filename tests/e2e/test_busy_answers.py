"""A command that clashed with other writers on every retry has changed nothing: it is
answered 503 `busy` with Retry-After, never a 409 the contract does not list."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import problems
from engine.kernel.errors import ConcurrentUpdate


def test_a_clash_that_outlasted_the_retries_is_503_busy_with_retry_after():
    app = FastAPI()
    problems.install(app)

    @app.post("/clash")
    def clash() -> None:
        raise ConcurrentUpdate("order 1 kept changing; retry")

    answer = TestClient(app).post("/clash")
    assert answer.status_code == 503
    assert answer.json()["code"] == "busy"
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_openapi_document_lists_busy_for_placing_an_order(client):
    placing = client.get("/openapi.json").json()["paths"]["/v1/orders"]["post"]["responses"]
    assert "`busy`" in placing["503"]["description"]
    assert "Retry-After" in placing["503"]["headers"]
    assert "concurrent_update" not in str(client.get("/openapi.json").json())
