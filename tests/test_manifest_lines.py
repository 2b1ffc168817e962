"""Every finding on a manifest names its file and line: multi-document files, ``kind: List``,
kubectl's JSON, several files; through the collector and through ``diagnose -f``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from meshobs.cli.main import cli
from meshobs.collectors.manifests import parse_located
from tests.support.manifests import analyzer_findings, manifests_snapshot

MULTI = """\
# The payments namespace: a Service, its DestinationRule, then the routes.
apiVersion: v1
kind: Service
metadata:
  name: ledger
  namespace: payments
spec:
  selector: {app: ledger}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ledger
  namespace: payments
spec:
  host: ledger
  subsets:
  - name: stable
    labels: {track: stable}
---
# The canary is not defined above.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ledger
  namespace: payments
spec:
  hosts: [ledger]
  http:
  - route:
    - destination:
        host: ledger
        subset: stable
      weight: 90
    - destination:
        host: ledger
        subset: canary
      weight: 10
"""


def line_of(text: str, needle: str, occurrence: int = 0) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence]


def test_a_finding_on_a_multi_document_file_names_the_file_and_the_line_of_the_field() -> None:
    snapshot = manifests_snapshot({"deploy/payments.yaml": MULTI})
    (f,) = analyzer_findings(snapshot)
    assert (f.code, f.subject) == ("MSH0201", "VirtualService payments/ledger")
    assert (f.file, f.line) == ("deploy/payments.yaml", line_of(MULTI, "subset: canary"))
    assert f.location == f"deploy/payments.yaml:{line_of(MULTI, 'subset: canary')}"


def test_each_object_starts_on_its_own_line() -> None:
    located, _ = parse_located(MULTI, "m.yaml")
    assert [(o["kind"], where.line) for o, where in located] == [
        ("Service", line_of(MULTI, "apiVersion: v1")),
        ("DestinationRule", line_of(MULTI, "apiVersion: networking", 0)),
        ("VirtualService", line_of(MULTI, "apiVersion: networking", 1))]


KUBECTL_LIST = """\
apiVersion: v1
items:
- apiVersion: networking.istio.io/v1
  kind: Gateway
  metadata:
    name: shop
    namespace: web
  spec:
    selector:
      istio: ingressgateway
    servers:
    - hosts:
      - shop.example.org
      port:
        name: http
        number: 80
        protocol: HTTP
- apiVersion: networking.istio.io/v1
  kind: Gateway
  metadata:
    name: promo
    namespace: web
  spec:
    selector:
      istio: ingressgateway
    servers:
    - hosts:
      - shop.example.org
      port:
        name: http
        number: 80
        protocol: HTTP
kind: List
metadata:
  resourceVersion: ""
"""


def test_kubectl_list_items_keep_their_lines() -> None:
    snapshot = manifests_snapshot({"gateways.yaml": KUBECTL_LIST})
    found = {f.subject: (f.file, f.line) for f in analyzer_findings(snapshot)}
    assert found == {"Gateway web/shop": ("gateways.yaml", line_of(KUBECTL_LIST, "- hosts:", 0)),
                     "Gateway web/promo": ("gateways.yaml", line_of(KUBECTL_LIST, "- hosts:", 1))}


def test_kubectl_json_keeps_its_lines() -> None:
    from meshobs.model import thaw

    doc = {"apiVersion": "v1", "kind": "List", "items": [thaw(o) for o, _ in parse_located(MULTI, "m.yaml")[0]]}
    text = json.dumps(doc, indent=4)
    (f,) = analyzer_findings(manifests_snapshot({"dump.json": text}))
    assert (f.file, f.line) == ("dump.json", line_of(text, '"subset": "canary"'))


def test_the_finding_names_the_file_it_came_from() -> None:
    vs_only = MULTI.split("---\n")[2]
    snapshot = manifests_snapshot({"base/services.yaml": "---\n".join(MULTI.split("---\n")[:2]),
                                   "overlays/canary.yaml": vs_only})
    (f,) = analyzer_findings(snapshot)
    assert (f.file, f.line) == ("overlays/canary.yaml", line_of(vs_only, "subset: canary"))


def test_diagnose_config_only_names_file_and_line_in_every_output(tmp_path: Path) -> None:
    (tmp_path / "payments.yaml").write_text(MULTI)
    where = f"{tmp_path / 'payments.yaml'}:{line_of(MULTI, 'subset: canary')}"
    args = ["diagnose", "--all", "--config-only", "-f", str(tmp_path)]
    doc = json.loads(CliRunner().invoke(cli, [*args, "-o", "json"]).stdout)
    ledger = next(s for s in doc["services"] if s["service"] == "ledger")
    (f,) = ledger["findings"]
    assert f["location"] == {"file": str(tmp_path / "payments.yaml"), "line": line_of(MULTI, "subset: canary")}
    assert f"at {where}" in CliRunner().invoke(cli, [*args, "--no-color"]).stdout
    assert where in CliRunner().invoke(cli, [*args, "-o", "junit"]).stdout
    assert where in CliRunner().invoke(cli, [*args, "-o", "markdown"]).stdout
