"""Renderers on a hand-built diagnosis: marks, colour, structure (not wording)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from meshobs.engine import diagnose, diagnose_all
from meshobs.model import ServiceRef, SourceState, UpstreamHost
from meshobs.render import json as json_out
from meshobs.render import junit, markdown, text
from tests.support.builders import MeshBuilder


def failing_report():  # type: ignore[no-untyped-def]
    m = MeshBuilder().service("frontend").service("cart-service").service("database-service")
    m.call("frontend", "cart-service", responses=[("200", "-", 0.5), ("503", "-", 0.5)])
    m.call("cart-service", "database-service", responses=[("503", "UH", 1.0)], reached=False)
    m.cluster("cart-service", "database-service", outlier_ejections_active=1,
              hosts=(UpstreamHost("10.0.0.1:5432", healthy=False, failed_outlier_check=True),))
    m.proxy("cart-v1-0", warming_clusters=1).without("prometheus")
    m.source("prometheus", SourceState.OK, kind="prometheus")
    return m.build()


def test_text_marks_and_no_colour_by_default() -> None:
    out = text.render(diagnose(failing_report(), ServiceRef("default", "cart-service")))
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert "  \u00d7 traffic.error_rate" in lines  # fail
    assert "  \u203c proxy.warming" in lines  # warning only
    assert "Proxy health  \u221a 5 passed" in lines  # passes are counted, not listed
    assert "proxy.not_ready" not in out
    assert lines[-1].startswith("Status: failing")
    assert "doc: meshobs explain MSH0406" in out


def test_text_skipped_mark_with_reason() -> None:
    snap = MeshBuilder().service("cart-service").without("envoy").build()
    out = text.render(diagnose(snap, ServiceRef("default", "cart-service")))
    lines = out.splitlines()
    # Checks skipped for one reason share one line, their ids on the next.
    i = next(i for i, ln in enumerate(lines) if ln.startswith("  \u2013 skipped: no proxy data"))
    assert "proxy.warming" in lines[i + 1].split(", ") or "proxy.warming" in lines[i + 1].strip().split(", ")


def test_text_colour_when_asked() -> None:
    out = text.render(diagnose(failing_report(), ServiceRef("default", "cart-service")), color=True)
    assert "\x1b[31m" in out  # red for failures


def test_json_carries_causal_links_as_fields() -> None:
    data = json.loads(json_out.render(diagnose(failing_report(), ServiceRef("default", "cart-service"))))
    first = data["findings"][0]
    assert first["code"] == "MSH0406" and first["rank"] == 1
    assert "MSH0401 Service default/cart-service" in first["explains"]
    symptom = next(f for f in data["findings"] if f["code"] == "MSH0401")
    assert "MSH0406 Service default/database-service" in symptom["caused_by"]


def test_mesh_outputs() -> None:
    mesh = diagnose_all(failing_report())
    data = json.loads(json_out.render(mesh))
    assert data["status"] == "failing"
    assert [s["service"] for s in data["services"]] == ["cart-service", "database-service", "frontend"]
    root = ET.fromstring(junit.render(mesh))
    # One suite for the mesh (its analyzers), one per service.
    suites = root.findall("testsuite")
    assert suites[0].get("name") == "meshobs diagnose --all (mesh)" and len(suites) == 4
    assert {c.get("name") for c in suites[0].findall("testcase")} == {a["id"] for a in data["analyzers"]}
    md = markdown.render(mesh)
    assert md.count("## Diagnosis of") == 3
    mesh_text = text.render(mesh)
    assert "failing  default/cart-service" in mesh_text
    # A downstream root cause appears once, with the diagnoses it belongs to.
    assert mesh_text.count("MSH0406 error") == 1
    assert "in the diagnosis of: default/cart-service, default/database-service" in mesh_text


def test_mesh_json_written_in_parts_is_the_whole_document_indented() -> None:
    # render_parts writes --all one service at a time; joined, it is json's own indented text of
    # the whole document, byte for byte (no service, one, several; a NaN takes json's path).
    from dataclasses import replace

    mesh = diagnose_all(failing_report())
    for report in (mesh, replace(mesh, reports=()), replace(mesh, reports=mesh.reports[:1])):
        whole = json.dumps(json_out.mesh_dict(report, 300.0), indent=2, default=str)
        assert json_out.render(report, window_s=300.0) == whole
    assert "".join(json_out.render_parts(mesh, window_s=float("nan"))) == json.dumps(
        json_out.mesh_dict(mesh, float("nan")), indent=2, default=str)
    assert len(list(json_out.render_parts(mesh))) == len(mesh.reports) + 3


def test_a_mesh_documents_checklist_line_is_the_text_json_would_write() -> None:
    # --all writes each checklist line without encoding a dict (meshobs.render.json._check_text):
    # it must be the bytes json.dumps and the re-indenting give, whatever the strings hold.
    from meshobs.catalogue import Category
    from meshobs.engine.report import CheckResult

    odd = ['no requests into shop/cart "v2"', "d\u00e9j\u00e0 vu \u2713 \U0001f600", "tab\there\nnewline\\",
           "lone \ud800 surrogate", "\x00\x1f control"]
    for reason in ["", *odd]:
        for status in ("pass", "skipped"):
            line = CheckResult("traffic.error_rate", Category.TRAFFIC, status, reason)
            expected = json.dumps(json_out._check(line), indent=2).replace("\n", "\n        ")
            assert json_out._check_text(line) == expected
