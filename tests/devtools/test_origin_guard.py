"""A devtools on loopback answers only its own: ingest takes JSON bodies only (a cross-site
``text/plain`` POST needs no preflight), and a request whose ``Origin`` is not a loopback origin or
whose ``Host`` is not a loopback name with the server's port (the server half of DNS rebinding) is
refused 403 on every route, reads included. Extra names can be allowed (``allowed_hosts``)."""

from __future__ import annotations

import json

import httpx
import pytest

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer, allowed_hosts_from
from tests.devtools.helpers import RunBuilder

INGEST = "/api/observability/records"


def _body() -> bytes:
    return json.dumps({"schemaVersion": 5, "records": [RunBuilder().start()]}).encode()


def test_ingest_refuses_a_body_not_declared_as_json(api: httpx.Client) -> None:
    response = api.post(INGEST, content=_body(), headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_ingest_refuses_a_body_without_a_content_type(api: httpx.Client) -> None:
    assert api.post(INGEST, content=_body()).status_code == 415


def test_ingest_takes_json_with_a_charset(api: httpx.Client) -> None:
    response = api.post(INGEST, content=_body(), headers={"content-type": "Application/JSON; charset=utf-8"})
    assert response.status_code == 202


def test_a_cross_site_origin_cannot_write(api: httpx.Client) -> None:
    response = api.post(INGEST, content=_body(),
                        headers={"content-type": "application/json", "origin": "https://evil.example"})
    assert response.status_code == 403
    assert api.get("/api/stats").json()["records"] == 0


@pytest.mark.parametrize("path", ["/api/records", "/api/runs", "/api/health", "/"])
def test_a_cross_site_origin_cannot_read(api: httpx.Client, path: str) -> None:
    assert api.get(path, headers={"origin": "https://evil.example"}).status_code == 403


def test_a_null_origin_is_refused(api: httpx.Client) -> None:
    assert api.get("/api/records", headers={"origin": "null"}).status_code == 403


def test_a_foreign_host_header_is_refused_on_reads(api: httpx.Client, devtools: DevtoolsServer) -> None:
    response = api.get("/api/records", headers={"host": f"attacker.example:{devtools.port}"})
    assert response.status_code == 403
    assert "attacker.example" in response.json()["error"]


def test_a_loopback_host_with_another_port_is_refused(api: httpx.Client, devtools: DevtoolsServer) -> None:
    assert api.get("/api/records", headers={"host": f"localhost:{devtools.port + 1}"}).status_code == 403


def test_loopback_names_and_origins_are_let_in(api: httpx.Client, devtools: DevtoolsServer) -> None:
    for host in (f"localhost:{devtools.port}", f"127.0.0.1:{devtools.port}", f"LOCALHOST:{devtools.port}"):
        assert api.get("/api/records", headers={"host": host}).status_code == 200, host
    for origin in ("http://localhost:5173", "http://127.0.0.1", f"http://[::1]:{devtools.port}"):
        response = api.post(INGEST, content=_body(), headers={"content-type": "application/json", "origin": origin})
        assert response.status_code == 202, origin


def test_an_allowed_host_is_let_in_as_host_and_origin() -> None:
    with DevtoolsServer(DevtoolsConfig(allowed_hosts=("devbox.example",))) as server, \
            httpx.Client(base_url=server.url) as api:
        headers = {"host": f"devbox.example:{server.port}", "origin": f"http://devbox.example:{server.port}"}
        assert api.get("/api/records", headers=headers).status_code == 200
        assert api.get("/api/records", headers={"host": f"other.example:{server.port}"}).status_code == 403


def test_allowed_hosts_come_from_the_option_and_the_environment() -> None:
    assert allowed_hosts_from(["a.example", "B.example"], "c.example, d.example,") == \
        ("a.example", "b.example", "c.example", "d.example")
    assert allowed_hosts_from(None, None) == ()
