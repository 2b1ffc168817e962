"""Serve a demo scenario live on 127.0.0.1: Envoy admin APIs, Jaeger's v3 API, a Kubernetes API
subset and (when installed) a real Prometheus, plus a ``meshobs.yaml`` pointing at them, so
``meshobs graph --config DIR/meshobs.yaml`` exercises every collector's live path.

    with serve_scenario("ecommerce", tmp) as demo:
        config = load_config(str(demo.config_path))
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from meshobs.raw import Payload, RawSource, iso

from .catalog import scenario_for
from .envoy_admin import answer
from .httpserver import LoopbackHTTPServer, Request, Response
from .kube_paging import ListPager, PagingError
from .labelselector import SelectorError, parse_selector
from .render_envoy import LazyProxies
from .render_jaeger import jaeger_source
from .render_kubernetes import NOT_INSTALLED, kubernetes_source
from .scenario import Scenario

# (status, content type, body)
Answer = tuple[int, str, str]
Route = Callable[[str, dict[str, list[str]]], Answer]
JSON = "application/json"
ENVOY_PATHS = {"/ready": "ready", "/server_info": "server_info", "/clusters": "clusters",
               "/stats": "stats", "/config_dump": "config_dump", "/certs": "certs"}


class WorkdirInUse(Exception):
    """The work directory is not empty: another demo may be serving from it (a second Prometheus
    on the same TSDB fails with "overlapping blocks"), or it holds the user's files."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so ``with`` blocks stop every server and child they started."""


class StopOnSigterm:
    """While entered (in the main thread), SIGTERM raises :class:`Terminated`.

    Inside ``hold()`` the signal is only remembered and raised when the block ends: starting the
    servers is not cut in half (a Prometheus started but not yet handed to its ``LiveDemo`` would
    be orphaned). Once raised, further SIGTERMs are ignored so the cleanup runs to its end.
    """

    def __init__(self) -> None:
        self.pending = False
        self._holding = False
        self._fired = False
        self._previous: Any = None
        self._active = False

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        if self._fired:
            return
        if self._holding:
            self.pending = True
            return
        self._fired = True
        raise Terminated()

    def __enter__(self) -> StopOnSigterm:
        # signal.signal only works in the main thread; elsewhere SIGTERM keeps its default.
        self._active = threading.current_thread() is threading.main_thread()
        if self._active:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._active:
            signal.signal(signal.SIGTERM, self._previous)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Defer SIGTERM until the block ends (then raise it, if one came)."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self.pending and not self._fired:
            self._fired = True
            raise Terminated()


class _Server:
    """A loopback server answering GETs through ``route(path, query)``."""

    def __init__(self, route: Route) -> None:
        def respond(request: Request) -> Response:
            parts = urlsplit(request.path)
            status, ctype, body = route(parts.path, parse_qs(parts.query, keep_blank_values=True))
            return Response(status, body, ctype)

        self._server = LoopbackHTTPServer(respond).start()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def stop(self) -> None:
        self._server.stop()


def _status_404(what: str) -> Answer:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"{what} not found", "reason": "NotFound", "code": 404}
    return 404, JSON, json.dumps(body)


def _kubernetes_route(raw: RawSource, pager: ListPager | None = None) -> Route:
    lists = {p.url: json.loads(p.body or "{}") for p in raw.payloads if p.status == 200}
    missing = {p.url for p in raw.payloads if p.key in NOT_INSTALLED}
    pager = pager or ListPager()
    # A whole list's answer (or page of it), encoded once: generated-5000's pods are 21 MB of
    # JSON, 0.3-0.8 s of this server's CPU to encode on every request. A page is keyed by its
    # token and the pager's revision, so a compaction still expires the token.
    texts: dict[tuple[str, ...], str] = {}

    def listed(doc: dict[str, Any], path: str, query: dict[str, list[str]], namespace: str | None = None) -> Answer:
        # As the API server does: ``?labelSelector=`` narrows the list (400 when unparsable),
        # then ``?limit=``/``?continue=`` page it.
        selector = (query.get("labelSelector") or [""])[0]
        limit, token = (query.get("limit") or [""])[0], (query.get("continue") or [""])[0]
        key = (path, limit, token, str(pager.revision))
        if not selector and namespace is None and key in texts:
            return 200, JSON, texts[key]
        try:
            match = parse_selector(selector)
        except SelectorError as exc:
            body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f"unable to parse requirement: {exc}", "reason": "BadRequest",
                    "code": 400}
            return 400, JSON, json.dumps(body)
        if selector or namespace is not None:
            doc = dict(doc)
            doc["items"] = [o for o in doc.get("items", [])
                            if (namespace is None or o["metadata"].get("namespace") == namespace)
                            and match(o["metadata"].get("labels") or {})]
        try:
            text = json.dumps(pager.page(doc, path, query, selected=bool(selector)))
        except PagingError as exc:
            return exc.status, JSON, json.dumps(exc.body)
        if not selector and namespace is None:
            texts[key] = text
        return 200, JSON, text

    def route(path: str, query: dict[str, list[str]]) -> Answer:
        path = path.rstrip("/")
        if path in lists:
            return listed(lists[path], path, query)
        # Namespaced variants: /api/v1/namespaces/NS/pods, /apis/G/V/namespaces/NS/PLURAL.
        parts = path.split("/")
        if "namespaces" in parts:
            i = parts.index("namespaces")
            if len(parts) == i + 2:  # one Namespace object
                for item in lists.get("/api/v1/namespaces", {}).get("items", []):
                    if item["metadata"]["name"] == parts[i + 1]:
                        return 200, JSON, json.dumps({"kind": "Namespace", "apiVersion": "v1", **item})
                return _status_404(f'namespaces "{parts[i + 1]}"')
            if len(parts) == i + 3:
                ns = parts[i + 1]
                cluster_path = "/".join(parts[:i] + parts[i + 2:])
                if cluster_path in lists:
                    return listed(lists[cluster_path], path, query, ns)
                if cluster_path in missing:
                    return 404, "text/plain", "404 page not found\n"
        return 404, "text/plain", "404 page not found\n"

    return route


def _envoy_route(proxies: list[RawSource] | LazyProxies, cache: int = 4096) -> Route:
    # Proxies are found by the path's first two segments (names hold no "/"): a scan of every
    # proxy's prefix per request costs O(proxies) on each of a big mesh's thousands of requests.
    if isinstance(proxies, LazyProxies):
        find = proxies.get
    else:
        by_pod = {(str(p.meta["namespace"]), str(p.meta["pod"])): p for p in proxies}

        def find(namespace: str, pod: str) -> RawSource | None:
            return by_pod.get((namespace, pod))
    # The filtered stats, made once per proxy and filter (the most recent ``cache``): the
    # collector asks the same filter on every run, and each answer otherwise decodes and
    # encodes the proxy's full stats again.
    filtered: OrderedDict[tuple[str, str, str], Payload | None] = OrderedDict()
    lock = threading.Lock()

    def route(path: str, query: dict[str, list[str]]) -> Answer:
        parts = path[1:].split("/", 2) if path.startswith("/") else []
        raw = find(parts[0], parts[1]) if len(parts) == 3 else None
        if raw is not None:
            key = ENVOY_PATHS.get("/" + parts[2])
            if key == "stats" and query.get("format") != ["json"]:
                key = None  # only the JSON stats are rendered
            # As Envoy answers it: ``/stats?filter=`` applied (the collector asks for what its
            # checks read; the full answer is ~10x larger).
            params = {k: v[0] for k, v in query.items() if v}
            payload = None
            if key == "stats":
                made = (parts[0], parts[1], params.get("filter", ""))
                with lock:
                    hit = made in filtered
                    if hit:
                        filtered.move_to_end(made)
                        payload = filtered[made]
                if not hit:
                    payload = answer(raw, key, params)
                    with lock:
                        filtered[made] = payload
                        if len(filtered) > cache:
                            filtered.popitem(last=False)
            elif key:
                payload = answer(raw, key, params)
            if payload is not None:
                ctype = "text/plain" if key == "ready" else JSON
                return payload.status or 200, ctype, payload.body or ""
        return 404, "text/plain", "envoy admin: no such endpoint\n"

    return route


def _jaeger_route(raw: RawSource) -> Route:
    def route(path: str, query: dict[str, list[str]]) -> Answer:
        if path == "/api/v3/services":
            return 200, JSON, (raw.get("services") or _empty()).body or "{}"
        if path == "/api/v3/traces":
            service = (query.get("query.service_name") or [""])[0]
            payload = raw.get(f"traces/{service}")
            if payload is None:  # Jaeger v3 answers a search with no match with 404
                return 404, JSON, json.dumps({"error": {"httpCode": 404, "message": "trace not found"}})
            return 200, JSON, payload.body or "{}"
        if path == "/api/dependencies":
            return 200, JSON, (raw.get("dependencies") or _empty()).body or "{}"
        return 404, "text/plain", "404 page not found\n"

    return route


def _istiod_route(raw: RawSource) -> Route:
    """One istiod replica per path prefix, as a port-forward to each pod would reach it. syncz
    honours ``?namespace=`` as istiod does (the proxies of that namespace only)."""
    def route(path: str, query: dict[str, list[str]]) -> Answer:
        pod, _, rest = path.lstrip("/").partition("/")
        key = {"ready": "ready", "debug/syncz": "syncz"}.get(rest)
        payload = raw.get(f"{pod}/{key}") if key else None
        if payload is None:
            return 404, "text/plain", "404 page not found\n"
        body = payload.body or ""
        namespace = (query.get("namespace") or [""])[0]
        if key == "syncz" and namespace:
            body = json.dumps([s for s in json.loads(body) if s["proxy"].rsplit(".", 1)[-1] == namespace], indent=1)
        return payload.status or 200, JSON if key == "syncz" else "text/plain", body

    return route


def _empty() -> Any:
    from meshobs.raw import Payload

    return Payload(key="", body="{}")


@dataclass
class LiveDemo:
    """A scenario served on loopback; stop it (or leave the ``with`` block) when done."""

    name: str
    config_path: Path
    kubernetes_url: str
    envoy_url: str
    jaeger_url: str
    prometheus_url: str | None
    _stoppers: list[Callable[[], None]] = field(default_factory=list)
    # istiod's debug endpoints (authored scenarios): ``<url>/<pod>/ready``,
    # ``<url>/<pod>/debug/syncz``; the config's ``sources.istiod.targets`` lists them.
    istiod_url: str | None = None
    # What each loopback server was asked ("kubernetes", "envoy", "jaeger"), for tests and benchmarks.
    _servers: dict[str, _Server] = field(default_factory=dict)
    # The Kubernetes API's list paging: ``compact()`` expires its continue tokens (tests).
    kubernetes_pager: ListPager = field(default_factory=ListPager)

    def requests_to(self, server: str) -> list[Request]:
        """Every request the ``server`` ("kubernetes", "envoy" or "jaeger") received so far."""
        return list(self._servers[server].requests)

    def stop(self) -> None:
        """Stop every server this demo started (idempotent)."""
        while self._stoppers:
            self._stoppers.pop()()

    def __enter__(self) -> LiveDemo:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_scenario(name: str | Scenario | None, workdir: str | Path, *, prometheus: bool | None = None,
                   recording_rules: str = "none") -> LiveDemo:
    """Start the servers for demo ``name`` (or a Scenario built by the caller, e.g. a test's
    own mesh) and write ``workdir/meshobs.yaml`` and a kubeconfig.

    ``prometheus=None`` starts a real Prometheus when the binary is installed; ``False`` never
    does (the config then has no Prometheus source). ``recording_rules`` ("none", "edges":
    meshobs's edge rules, "all": Istio's too; see :mod:`meshobs.collectors.prometheus.rules`)
    are loaded by that Prometheus and evaluated over the backfilled span. Raises
    :class:`WorkdirInUse` when ``workdir`` exists and is not empty.
    """
    scenario = name if isinstance(name, Scenario) else scenario_for(name)
    workdir = Path(workdir)
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise WorkdirInUse(f"{workdir}: exists and is not empty (another demo may be serving from it); "
                           "choose a new or empty directory")
    workdir.mkdir(parents=True, exist_ok=True)
    kube = kubernetes_source(scenario)
    proxies = LazyProxies(scenario)
    jaeger = jaeger_source(scenario)
    stoppers: list[Callable[[], None]] = []
    pager = ListPager()
    try:
        servers = [_Server(_kubernetes_route(kube, pager)), _Server(_envoy_route(proxies)),
                   _Server(_jaeger_route(jaeger))]
        stoppers.extend(s.stop for s in servers)
        prom_url = None
        from .promserver import prometheus_available, start_prometheus

        istiod_url = None
        if scenario.istiod is not None and scenario.rich:
            from .render_istiod import istiod_source

            istiod = istiod_source(scenario)
            istiod_server = _Server(_istiod_route(istiod))
            stoppers.append(istiod_server.stop)
            istiod_url = istiod_server.url
        if prometheus is True or (prometheus is None and prometheus_available()):
            prom_dir = workdir / "prometheus"
            prom_dir.mkdir(exist_ok=True)
            rules = _rules_file(recording_rules, prom_dir)
            # Every sample the backfill wrote: an authored scenario's history, else the window
            # and the minute before it (see _openmetrics).
            span = (scenario.history_s + scenario.metrics_end_s_ago if scenario.rich
                    else scenario.window_s + 60.0)
            end = scenario.time.timestamp()
            server = start_prometheus(_openmetrics(scenario), prom_dir, rules=rules,
                                      rules_range=(end - span, end) if rules is not None else None)
            stoppers.append(server.stop)
            prom_url = server.url
    except BaseException:
        for stop in reversed(stoppers):
            stop()
        raise
    kube_url, envoy_url, jaeger_url = (s.url for s in servers)
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "demo",
        "clusters": [{"name": "demo", "cluster": {"server": kube_url}}],
        "users": [{"name": "demo", "user": {"token": "demo-token-not-a-secret"}}],
        "contexts": [{"name": "demo", "context": {"cluster": "demo", "user": "demo"}}]}), encoding="utf-8")
    sources: dict[str, Any] = {
        "kubernetes": {"kubeconfig": str(kubeconfig), "context": "demo"},
        "envoy": {"discovery": "static", "targets": [
            {"namespace": p["namespace"], "pod": p["pod"], "workload": p["workload"],
             "url": f"{envoy_url}/{p['namespace']}/{p['pod']}"} for p in proxies.targets()]},
        "jaeger": {"url": jaeger_url, "api": "v3"},
    }
    if prom_url:
        sources["prometheus"] = {"url": prom_url}
    if istiod_url:
        sources["istiod"] = {"discovery": "static", "targets": [
            {"pod": pod, "namespace": "istio-system", "url": f"{istiod_url}/{pod}"}
            for pod in (p.key.split("/")[0] for p in istiod.payloads if p.key.endswith("/ready"))]}
    config = {"mesh": "istio", "window": f"{int(scenario.window_s)}s", "time": iso(scenario.time),
              "sources": sources}
    config_path = workdir / "meshobs.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return LiveDemo(scenario.name, config_path, kube_url, envoy_url, jaeger_url, prom_url, stoppers,
                    istiod_url=istiod_url, _servers=dict(zip(("kubernetes", "envoy", "jaeger"), servers[:3])),
                    kubernetes_pager=pager)


RECORDING_RULES = ("none", "edges", "all")


def _rules_file(which: str, workdir: Path) -> Path | None:
    """The recording rules ``which`` (one of RECORDING_RULES) as a rules file in ``workdir``."""
    from meshobs.collectors.prometheus.rules import EDGES_GROUP, ISTIO_GROUP, groups

    if which not in RECORDING_RULES:
        raise ValueError(f"recording rules {which!r}: expected one of {', '.join(RECORDING_RULES)}")
    if which == "none":
        return None
    path = workdir / "recording-rules.yaml"
    chosen = (EDGES_GROUP,) if which == "edges" else (ISTIO_GROUP, EDGES_GROUP)
    path.write_text(yaml.safe_dump({"groups": groups(chosen)}, sort_keys=False), encoding="utf-8")
    return path


def _openmetrics(scenario: Scenario) -> Iterator[str]:
    """What the demo's Prometheus is backfilled with: an authored scenario's hour of history
    (traffic phases, istiod's metrics), or the classic demo's steady window. In pieces, made as
    the backfill writes them: the whole text of generated-1000 is 3.2 GB."""
    if scenario.rich:
        from .build import scenario_timeline
        from .prom_timeline import openmetrics_chunks as timeline_chunks

        return timeline_chunks(scenario_timeline(scenario), scenario.time)
    from .prometheus import openmetrics_chunks

    return openmetrics_chunks(scenario.edges, scenario.time, scenario.window_s)
