"""The hospital lab-results scenario (meshobs/demo/scenarios/labresults.py): a healthy mesh, noisy
as real meshes are, must stay clean through the CLI, and its noise must really be in the payloads
(a clean verdict on a mesh without the noise would prove nothing)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from meshobs.cli.main import cli
from meshobs.demo.build import scenario_timeline
from meshobs.demo.prom_timeline import Series
from meshobs.demo.scenarios import library_scenario
from meshobs.raw import RawSource
from tests.support.scenarios import bundle, snapshot

NAME = "labresults-noisy"
MPI_CLUSTER = "cluster.outbound|8080||patient-index.mpi.svc.cluster.local."


def diagnose(*args: str) -> Result:
    return CliRunner().invoke(cli, ["diagnose", *args, "--from", f"demo:{NAME}", "-o", "json"],
                              catch_exceptions=False)


def series(metric: str, **labels: str) -> list[Series]:
    return [s for s in scenario_timeline(library_scenario(NAME)).series
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())]


def rate(found: list[Series]) -> float:
    """The current req/s (or bytes/s) of the series: their value now (age 0)."""
    return sum(s.values[s.segment(0.0)] or 0.0 for s in found)


def payload(raw: RawSource, key: str) -> Any:
    found = raw.get(key)
    assert found is not None, f"{raw.name}: no {key}"
    return found.json()


def kube(key: str) -> Any:
    return payload(next(s for s in bundle(NAME).sources if s.kind == "kubernetes"), key)


def envoy_stats(workload: str) -> list[dict[str, int]]:
    raws = [s for s in bundle(NAME).sources if s.kind == "envoy" and s.meta["workload"] == workload]
    assert raws, workload
    return [{s["name"]: s["value"] for s in payload(raw, "stats")["stats"] if "name" in s} for raw in raws]


# -- the verdict -----------------------------------------------------------------------------

def test_the_whole_mesh_is_healthy_with_no_finding_of_any_severity() -> None:
    result = diagnose("--all")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "healthy"
    assert doc["findings"] == []
    assert {s["service"]: s["findings"] for s in doc["services"] if s["findings"]} == {}
    statuses = {f"{s['namespace']}/{s['service']}": s["status"] for s in doc["services"]}
    # Every application service is judged and healthy (istiod, judged by no traffic check, is not).
    assert {k: v for k, v in statuses.items() if not k.startswith("istio-system/")} == {
        "portal/results-api": "healthy", "portal/cumulative-report": "healthy", "mpi/patient-index": "healthy",
        "lab/hl7-ingest": "healthy", "lab/reference-ranges": "healthy", "lab/results-db": "healthy",
        "lab/ingest.notifiable-registry.example": "healthy"}


@pytest.mark.parametrize("service", ["results-api", "reference-ranges", "patient-index"])
def test_one_service_is_healthy(service: str) -> None:
    result = diagnose(service)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "healthy" and doc["findings"] == []


# -- the noise is in the data ----------------------------------------------------------------

def test_the_patient_index_fails_first_attempts_and_the_retries_absorb_them() -> None:
    """0.4 % 503 on the patient index's own side, next to nothing left at results-api, and
    results-api's Envoy counting the retries that saved them."""
    into = {"destination_service_name": "patient-index", "source_workload": "results-api-v12"}
    dst = series("istio_requests_total", reporter="destination", **into)
    failed = rate([s for s in dst if s.labels["response_code"] == "503"])
    assert failed / rate(dst) == pytest.approx(0.004, rel=0.01)
    src = series("istio_requests_total", reporter="source", **into)
    urx = rate([s for s in src if (s.labels["response_code"], s.labels["response_flags"]) == ("503", "URX")])
    assert 0 < urx / rate(src) < 1e-6
    for s in envoy_stats("results-api-v12"):
        assert s[MPI_CLUSTER + "upstream_rq_retry"] > s[MPI_CLUSTER + "upstream_rq_retry_success"] > 0
        assert 0 <= s[MPI_CLUSTER + "upstream_rq_retry_limit_exceeded"] < s[MPI_CLUSTER + "upstream_rq_retry_success"]
    # What the engine reads carries them too: the callee's own view, under the 1 % threshold.
    (edge,) = [e for e in snapshot(NAME).edges if e.destination.name == "patient-index"]
    assert edge.destination_error_rate == pytest.approx(30.0 * 1.004016 * 0.004, rel=0.01)


def test_clinicians_404_and_401_are_in_the_series() -> None:
    src = series("istio_requests_total", reporter="source", destination_service_name="results-api",
                 source_workload="istio-ingressgateway")
    by_code = {code: rate([s for s in src if s.labels["response_code"] == code]) / rate(src)
               for code in ("404", "401")}
    assert by_code == {"404": pytest.approx(0.035), "401": pytest.approx(0.006)}


def test_reference_ranges_answer_grpc_not_found_and_unavailable_inside_http_200() -> None:
    for workload, unavailable in (("reference-ranges-v3", 0.0005), ("reference-ranges-v4", 0.0015)):
        found = series("istio_requests_total", reporter="destination", destination_workload=workload)
        assert {s.labels["response_code"] for s in found} == {"200"}
        share = {g: rate([s for s in found if s.labels["grpc_response_status"] == g]) / rate(found)
                 for g in ("5", "14")}
        assert share == {"5": pytest.approx(0.008), "14": pytest.approx(unavailable)}, workload


def test_the_canary_takes_six_percent_as_weighed() -> None:
    found = series("istio_requests_total", reporter="source", destination_service_name="reference-ranges")
    canary = rate([s for s in found if s.labels["destination_workload"] == "reference-ranges-v4"])
    assert canary / rate(found) == pytest.approx(0.06)


def test_the_report_job_bursts_every_quarter_hour() -> None:
    sc = library_scenario(NAME)
    edge = next(e for e in sc.edges if e.source_workload == "cumulative-report")
    rates = [edge.view("source", age).rps for age in range(0, 3600, 60)]
    assert max(rates) == 65.0 and min(rates) == 0.0
    assert sum(r > 0 for r in rates) == pytest.approx(20, abs=2)  # 5 minutes of every 15
    pod = next(p for p in kube("pods")["items"] if p["metadata"]["name"].startswith("cumulative-report"))
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"


def test_postgres_and_the_registry_are_tcp_and_the_registry_is_a_tls_service_entry() -> None:
    db = series("istio_tcp_sent_bytes_total", destination_service_name="results-db", reporter="source")
    assert rate(db) == pytest.approx(520000.0 + 260000.0)
    assert not series("istio_requests_total", destination_service_name="results-db")
    registry = "ingest.notifiable-registry.example"
    assert rate(series("istio_tcp_sent_bytes_total", destination_service_name=registry, reporter="source")) > 0
    (entry,) = [r for r in library_scenario(NAME).config if r["kind"] == "ServiceEntry"]
    assert entry["spec"]["hosts"] == [registry] and entry["spec"]["ports"][0]["protocol"] == "TLS"


def test_one_ingest_container_restarted_once_four_and_a_half_days_ago() -> None:
    sc = library_scenario(NAME)
    pods = [p for p in kube("pods")["items"] if p["metadata"]["name"].startswith("hl7-ingest")]
    restarted = [s for p in pods for s in p["status"]["containerStatuses"] if s["restartCount"]]
    assert len(pods) == 3 and len(restarted) == 1 and restarted[0]["restartCount"] == 1
    assert restarted[0]["lastState"]["terminated"]["reason"] == "OOMKilled"
    finished = restarted[0]["lastState"]["terminated"]["finishedAt"]
    assert finished == (sc.time - timedelta(days=4.5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_gateway_route_to_a_service_of_another_namespace_by_its_full_name() -> None:
    """A VirtualService bound to a Gateway may name its destination by the Service's full name
    in another namespace, with no port (valid Istio). The demo's Envoy rendering looked the host
    up as a short name in the VirtualService's own namespace and raised KeyError."""
    from meshobs.collect import build_snapshot
    from meshobs.demo.author import Mesh, resource
    from meshobs.demo.build import render_bundle
    from meshobs.demo.expect import Expectation

    m = Mesh("lab-portal", "A results portal in front of the lab's HL7 ingest", "no fault")
    gw = m.ingress_gateway()
    ingest = m.workload("lab", "hl7-ingest", "v7", port=8443)
    m.call(gw, ingest, 12.0, 30.0, 200.0)
    m.apply(resource("Gateway", "portal", "hospital-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["hl7.example"]}]}))
    m.apply(resource("VirtualService", "portal", "hl7", {
        "hosts": ["hl7.example"], "gateways": ["hospital-gateway"],
        "http": [{"route": [{"destination": {"host": "hl7-ingest.lab.svc.cluster.local"}}]}]}))
    snapshot = build_snapshot(render_bundle(m.build(Expectation("healthy", healthy=True))), origin="test")
    clusters = {d.cluster for p in snapshot.proxies if p.workload and p.workload.name.startswith("istio-ingress")
                for r in p.routes for d in r.destinations}
    assert "outbound|8443||hl7-ingest.lab.svc.cluster.local" in clusters
