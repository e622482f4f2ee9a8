"""Redis clients from URLs: the one place cruxcelery turns a URL into a redis-py client.

Every URL setting (``CRUX_REDIS_URL``, ``CRUX_TELEMETRY_REDIS_URL``, ``cruxcelery dev --redis-url``)
accepts these forms:

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) and
  ``unix:///path/to/redis.sock[?db=N]``: one server (redis-py's ``Redis.from_url``).
- ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``: the master
  that the Sentinels at these addresses (port 26379 by default) name ``service``, found again after
  a failover. The password is the master's; ``?sentinel_password=`` authenticates to the Sentinels.
- ``redis+cluster://[[user]:password@]host[:port][,host[:port]...]``: a Redis Cluster, reached
  through any of these nodes (port 6379 by default); database 0 only, as Cluster has no other.

A malformed URL raises ``ValueError`` (settings turn it into a ``ConfigurationError``). Building a
client never talks to Redis: a cluster client asks a node for the slot map on its first command, and
answers ``redis.ConnectionError`` then if no node does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.exceptions import RedisClusterException
from redis.sentinel import Sentinel

__all__ = [
    "REDIS_URL_SCHEMES",
    "SERVER_SCHEMES",
    "check_redis_url",
    "is_cluster",
    "is_redis_url",
    "redis_client",
    "socket_timeout_of",
]

SENTINEL_SCHEME = "redis+sentinel://"
CLUSTER_SCHEME = "redis+cluster://"
SERVER_SCHEMES = ("redis://", "rediss://", "unix://")  # one server: what kombu's Redis broker URLs use too
REDIS_URL_SCHEMES = (*SERVER_SCHEMES, SENTINEL_SCHEME, CLUSTER_SCHEME)
_SENTINEL_PORT = 26379
_REDIS_PORT = 6379


def is_redis_url(url: str) -> bool:
    return url.startswith(REDIS_URL_SCHEMES)


def check_redis_url(url: str) -> str:
    """``url`` when it is one of the forms above; ``ValueError`` saying what is wrong otherwise."""
    if url.startswith(SENTINEL_SCHEME):
        _sentinel_target(url)
    elif url.startswith(CLUSTER_SCHEME):
        _cluster_target(url)
    elif not is_redis_url(url):
        raise ValueError(f"not a Redis URL: it starts with none of {', '.join(REDIS_URL_SCHEMES)}")
    return url


def redis_client(url: str, **options: Any) -> redis.Redis:
    """A client for ``url`` with redis-py connection ``options`` (timeouts, ``retry``,
    ``decode_responses``...). A cluster client answers every command the flow store and the spool
    send (each script touches the keys of one hash tag), so it is typed as ``redis.Redis``."""
    if url.startswith(SENTINEL_SCHEME):
        target, service, db = _sentinel_target(url)
        sentinel_kwargs = {"password": target.query.get("sentinel_password"),
                           "socket_timeout": options.get("socket_timeout"),
                           "socket_connect_timeout": options.get("socket_connect_timeout")}
        sentinel = Sentinel(target.nodes, sentinel_kwargs={k: v for k, v in sentinel_kwargs.items() if v is not None})
        master: redis.Redis = sentinel.master_for(service, db=db, username=target.username,
                                                  password=target.password, **options)
        return master
    if url.startswith(CLUSTER_SCHEME):
        target = _cluster_target(url)
        nodes = [ClusterNode(host, port) for host, port in target.nodes]  # type: ignore[no-untyped-call]
        lazy = _LazyCluster(lambda: RedisCluster(startup_nodes=nodes, username=target.username,
                                                 password=target.password, **options), options)
        return cast(redis.Redis, lazy)
    return redis.Redis.from_url(check_redis_url(url), **options)


def is_cluster(client: redis.Redis) -> bool:
    """True for a client of ``redis+cluster://``: it has no single connection pool."""
    return isinstance(client, _LazyCluster)


def socket_timeout_of(client: redis.Redis) -> float | None:
    """The read timeout the client was built with (``None``: none)."""
    if isinstance(client, _LazyCluster):
        timeout = client.options.get("socket_timeout")
    else:
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    return float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None


def _sentinel_target(url: str) -> tuple[_Target, str, int]:
    target = _parse(url, SENTINEL_SCHEME, _SENTINEL_PORT)
    if not 1 <= len(target.path) <= 2:
        raise ValueError(f"a Sentinel URL names its service: {SENTINEL_SCHEME}host:26379/mymaster[/db]")
    db = target.path[1] if len(target.path) == 2 else "0"
    if not db.isdigit():
        raise ValueError("the database of a Sentinel URL is a number")
    return target, target.path[0], int(db)


def _cluster_target(url: str) -> _Target:
    target = _parse(url, CLUSTER_SCHEME, _REDIS_PORT)
    if target.path:
        raise ValueError(f"a Cluster URL has no database or path: {CLUSTER_SCHEME}host:7000,host:7001")
    return target


class _LazyCluster:
    """A ``RedisCluster`` built on first use (building one asks a node for the slot map)."""

    def __init__(self, build: Callable[[], RedisCluster], options: dict[str, Any]) -> None:
        self._build = build
        self.options = options
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()

    def register_script(self, script: str | bytes) -> Script:
        text = script.encode() if isinstance(script, str) else script  # redis-py's encoding, without a client yet
        return Script(cast(redis.Redis, self), text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connected(), name)

    def _connected(self) -> RedisCluster:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._build()
                except RedisClusterException as error:
                    raise redis.ConnectionError(str(error)) from error
            return self._client


@dataclass(frozen=True)
class _Target:
    nodes: list[tuple[str, int]]
    username: str | None
    password: str | None
    path: list[str]
    query: dict[str, str]


def _parse(url: str, scheme: str, default_port: int) -> _Target:
    rest, _, query = url[len(scheme):].partition("?")
    netloc, _, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = [_node(part, default_port) for part in hosts.split(",")]
    params = {key: values[-1] for key, values in parse_qs(query).items()}
    return _Target(nodes, username, password, [unquote(p) for p in path.split("/") if p], params)


def _node(text: str, default_port: int) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    if not host:
        raise ValueError("a Redis URL lists host[:port] addresses separated by commas")
    if not colon:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("a port in a Redis URL is a number from 1 to 65535")
    return host, int(port)
