"""httpx transports that send each request through the proxy :mod:`keyfob.network` chose.

httpx picks a proxy per URL pattern (``mounts``), which cannot say what NO_PROXY
says (CIDR networks, domain suffixes on a label boundary). These transports ask
:meth:`~keyfob.network.Network.proxy_for` for each request and keep one httpx
transport per proxy (and one without), all on the same TLS context. Imported with
httpx, by the drivers only.
"""

from __future__ import annotations

import ssl
import threading

import httpx

from keyfob.network import Network


class Routes(httpx.BaseTransport):
    """For ``httpx.Client``."""

    def __init__(self, network: Network, tls: ssl.SSLContext, limits: httpx.Limits) -> None:
        self._network = network
        self._tls = tls
        self._limits = limits
        self._routes: dict[str | None, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def _route(self, url: httpx.URL) -> httpx.HTTPTransport:
        proxy = self._network.proxy_for(str(url))
        key = proxy.url if proxy is not None else None
        with self._lock:
            route = self._routes.get(key)
            if route is None:
                route = self._routes[key] = httpx.HTTPTransport(
                    verify=self._tls, limits=self._limits, trust_env=False, proxy=key
                )
        return route

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._route(request.url).handle_request(request)

    def close(self) -> None:
        with self._lock:
            routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            route.close()


class AsyncRoutes(httpx.AsyncBaseTransport):
    """For ``httpx.AsyncClient`` (one per event loop, as the client)."""

    def __init__(self, network: Network, tls: ssl.SSLContext, limits: httpx.Limits) -> None:
        self._network = network
        self._tls = tls
        self._limits = limits
        self._routes: dict[str | None, httpx.AsyncHTTPTransport] = {}

    def _route(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        proxy = self._network.proxy_for(str(url))
        key = proxy.url if proxy is not None else None
        route = self._routes.get(key)  # one event loop: no other task runs in between
        if route is None:
            route = self._routes[key] = httpx.AsyncHTTPTransport(
                verify=self._tls, limits=self._limits, trust_env=False, proxy=key
            )
        return route

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            await route.aclose()
