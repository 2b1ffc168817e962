"""What the traffic shows of a VirtualService rule that can never match (issue 11 Build 3).

The analyzer (config.unreachable_rule, MSH0220) sees from the configuration alone that an
earlier rule takes every request. This check reads the traffic: where that rule was the only
way to a subset (a canary, a premium tier), the subset received no request while the service
carried plenty (MSH0259, a routing symptom). The ranking then links the two: the unreachable
rule is the cause, the idle subset what it does. A subset some other rule also routes to, or a
rule no analyzer calls unreachable, is not this check's business (an idle header-match rule is
usually just a header nobody sent).
"""

from __future__ import annotations

from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.istio_config import http_routes, service_hosts
from meshobs.model import Mesh, MeshSnapshot, ServiceRef

from .base import Finding, Settings, check, finding
from .config import target_service
from .config_routes import requests_by_subset, sidecar_virtual_services
from .config_vs import unreachable_rules
from .split import require_requests


@check("config.idle_route", Category.CONFIG, ("config", "requests"), ("MSH0259",), mesh=Mesh.ISTIO)
def idle_route(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A subset only an unreachable VirtualService rule routes to received no request while the
    service carried traffic: the traffic confirms the rule is dead."""
    svc = target_service(snapshot, service)
    hosts = service_hosts(svc)
    for vs in sidecar_virtual_services(snapshot, hosts):
        dead = {int(f.evidence["rule"]): f for f in unreachable_rules(snapshot, vs)}
        if not dead:
            continue
        routes = http_routes(vs)
        live = {(d.host, d.subset) for r in routes if r.index not in dead for d in r.destinations}
        only_dead = {(d.host, d.subset): r.index for r in routes if r.index in dead for d in r.destinations
                     if d.subset and d.host in hosts and (d.host, d.subset) not in live}
        if not only_dead:
            continue
        observed, _callers = requests_by_subset(snapshot, service, next(iter(only_dead))[0])
        counts = {"(none)" if subset is None else subset: n for subset, n in observed.items()}
        require_requests(counts, f"the subsets of {service}")
        total = sum(counts.values())
        for (h, subset), index in sorted(only_dead.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            if counts.get(str(subset), 0.0) > 0:
                continue
            cause = dead[index]
            yield finding("MSH0259", "config.idle_route", f"Service {service}", service=service, subset=subset,
                          host=h, requests=total, rule=cause.fields["rule"],
                          virtual_service=f"{vs.namespace}/{vs.name}",
                          evidence={"observed_requests": {k: round(v, 1) for k, v in sorted(counts.items())},
                                    "window_s": snapshot.window_s, "rule": index},
                          magnitude=total,
                          hint=f"see {cause.code} on VirtualService {vs.namespace}/{vs.name}: reorder the rules so "
                               "the one matching everything comes last")
