"""The course-registration scenario (meshobs/demo/scenarios/enrolment.py): an EnvoyFilter's local
rate limit on section-capacity's inbound sidecars answers a fifth of the registration rush with
429 RL. First that the fault is really in the payloads (a verdict on a mesh without it would
prove nothing), then what an SRE wants from ``diagnose`` on the caller that suffers (enrol-api)
and on the rate-limited service. (What meshobs does not read yet -- the filter's token bucket,
the limiter's counters -- is said in the tests' docstrings, not asserted.)"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from click.testing import CliRunner, Result

from meshobs.checks.base import Settings
from meshobs.cli.main import cli
from meshobs.collect import build_snapshot
from meshobs.demo.build import render_bundle, scenario_timeline
from meshobs.demo.prom_timeline import Series
from meshobs.demo.scenarios import library_scenario
from meshobs.demo.scenarios.enrolment import FILTER, FILTER_S, OPENED_S, REFUSED, enrolment
from meshobs.engine import diagnose as engine_diagnose
from meshobs.engine.report import Report
from meshobs.model import ServiceRef
from meshobs.raw import RawSource
from tests.support.scenarios import bundle, scenario

NAME = "enrolment-rate-limited"
FILTER_SUBJECT = f"EnvoyFilter courses/{FILTER}"
LIMITED = "courses/section-capacity"
# What points at the rate-limited service: the EnvoyFilter, its Service or Workload, the hop to it.
AT_THE_LIMITED_SERVICE = (FILTER_SUBJECT, "Service courses/section-capacity",
                          "Workload courses/section-capacity-v11",
                          "Edge enrol/enrol-api -> courses/section-capacity")
LIMITER = "http_local_rate_limiter.http_local_rate_limit."


def diagnose(service: str) -> Result:
    return CliRunner().invoke(cli, ["diagnose", service, "--from", f"demo:{NAME}", "-o", "json"],
                              catch_exceptions=False)


def series(metric: str, **labels: str) -> list[Series]:
    return [s for s in scenario_timeline(scenario(NAME)).series
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())]


def rate(found: list[Series], age: float = 0.0) -> float:
    """The req/s of the series ``age`` seconds before the scenario time."""
    return sum(s.values[s.segment(age)] or 0.0 for s in found)


def payload(raw: RawSource, key: str) -> Any:
    found = raw.get(key)
    assert found is not None, f"{raw.name}: no {key}"
    return found.json()


def envoy_stats(workload: str) -> list[dict[str, int]]:
    raws = [s for s in bundle(NAME).sources if s.kind == "envoy" and s.meta["workload"] == workload]
    assert raws, workload
    return [{s["name"]: s["value"] for s in payload(raw, "stats")["stats"] if "name" in s} for raw in raws]


def points_at_the_limited_service(finding: dict[str, Any]) -> bool:
    return finding["subject"] in AT_THE_LIMITED_SERVICE


def names_the_rate_limit(finding: dict[str, Any]) -> bool:
    """Does the finding say *how* the requests failed: the 429s, the RL flag, the local rate
    limit's detail or counters (not only an EnvoyFilter's name and date)?"""
    text = json.dumps({k: finding[k] for k in ("message", "evidence", "hint")})
    return "429" in text or "local_rate_limit" in text or '"RL"' in text


# -- the fault is in the data ----------------------------------------------------------------

def test_section_capacitys_sidecars_answer_a_fifth_with_429_rl_since_the_window_opened() -> None:
    dst = series("istio_requests_total", reporter="destination", destination_service_name="section-capacity")
    limited = [s for s in dst if (s.labels["response_code"], s.labels["response_flags"]) == ("429", "RL")]
    assert rate(dst) == pytest.approx(150.0)
    assert rate(limited) / rate(dst) == pytest.approx(0.2)
    # Every caller gets its share, enrol-api and the waitlist worker alike (the bucket is per pod).
    for caller, rps in (("enrol-api-v23", 144.0), ("waitlist-worker-v7", 6.0)):
        mine = [s for s in limited if s.labels["source_workload"] == caller]
        assert rate(mine) == pytest.approx(0.2 * rps), caller
    # Before the window opened, 36 req/s passed the same limiter: no 429 at all.
    assert rate(dst, OPENED_S + 60.0) == pytest.approx(36.0)
    assert rate(limited, OPENED_S + 60.0) == 0.0
    # The callers' sidecars relay a 429 the upstream answered: no flag on their side.
    src = series("istio_requests_total", reporter="source", destination_service_name="section-capacity")
    assert {(s.labels["response_code"], s.labels["response_flags"]) for s in src} == {("200", "-"), ("429", "-")}
    # enrol-api turns each refusal into a 503 for the student.
    gw = series("istio_requests_total", reporter="source", destination_service_name="enrol-api")
    assert rate([s for s in gw if s.labels["response_code"] == "503"]) == pytest.approx(0.2 * 144.0)


def test_the_envoyfilter_inserts_a_local_rate_limit_on_section_capacitys_inbound_sidecars() -> None:
    (ef,) = [r for r in library_scenario(NAME).config if r["kind"] == "EnvoyFilter"]
    assert ef["apiVersion"] == "networking.istio.io/v1alpha3"
    assert (ef["metadata"]["namespace"], ef["metadata"]["name"]) == ("courses", FILTER)
    assert ef["spec"]["workloadSelector"] == {"labels": {"app": "section-capacity"}}
    (patch,) = ef["spec"]["configPatches"]
    assert (patch["applyTo"], patch["match"]["context"]) == ("HTTP_FILTER", "SIDECAR_INBOUND")
    value = patch["patch"]["value"]
    assert value["name"] == "envoy.filters.http.local_ratelimit"
    assert value["typed_config"]["token_bucket"] == {"max_tokens": 60, "tokens_per_fill": 40, "fill_interval": "1s"}
    # 3 pods x 40 tokens a second = 120 req/s: 150 leaves a fifth refused, 36 passed.
    bucket = value["typed_config"]["token_bucket"]["tokens_per_fill"] * len(envoy_stats("section-capacity-v11"))
    assert (bucket, REFUSED) == (120, pytest.approx(1 - bucket / 150.0)) and bucket > 36.0
    # It is what the Kubernetes API serves, dated 7 minutes before the window opened.
    kube = next(s for s in bundle(NAME).sources if s.kind == "kubernetes")
    (served,) = payload(kube, "crd/networking.istio.io/v1alpha3/envoyfilters")["items"]
    assert served["metadata"]["name"] == FILTER
    created = scenario(NAME).time - timedelta(seconds=FILTER_S)
    assert served["metadata"]["creationTimestamp"] == created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert FILTER_S - OPENED_S == 420.0


def test_the_local_rate_limit_counts_what_it_refused_on_every_section_capacity_sidecar() -> None:
    pods = envoy_stats("section-capacity-v11")
    assert len(pods) == 3
    for stats in pods:
        # 10 req/s per pod refused for the 15 minutes since the window opened.
        assert stats[LIMITER + "rate_limited"] == int(10.0 * OPENED_S)
        assert stats[LIMITER + "enforced"] == stats[LIMITER + "enabled"]
        assert stats[LIMITER + "ok"] + stats[LIMITER + "rate_limited"] == pytest.approx(
            stats[LIMITER + "enabled"], abs=2)
    # Nobody else rate-limits.
    assert not any(LIMITER + "rate_limited" in s for s in envoy_stats("enrol-api-v23"))


# -- what diagnose says: the caller that suffers ---------------------------------------------

def test_the_students_caller_fails_and_the_envoyfilter_ranks_first() -> None:
    result = diagnose("enrol-api")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "failing"
    first = doc["findings"][0]
    assert points_at_the_limited_service(first), first
    assert first["subject"] == FILTER_SUBJECT
    codes = [(f["code"], f["subject"]) for f in doc["findings"]]
    assert ("MSH0401", "Service enrol/enrol-api") in codes
    # It explains section-capacity's refusals (429 RL, counted as errors: the mesh refused them)
    # and enrol-api's 503s: the whole chain, the callee's first.
    assert first["explains"][0] == "MSH0401 Service courses/section-capacity"
    assert "MSH0401 Service enrol/enrol-api" in first["explains"]


def test_the_first_finding_says_the_callee_refused_with_429_rl() -> None:
    """The change ranks first, and says what it broke: the callee's errors by code and flag, as
    its proxies saw them (nothing reads the EnvoyFilter's token bucket or the limiter's counters)."""
    first = json.loads(diagnose("enrol-api").stdout)["findings"][0]
    assert names_the_rate_limit(first), first
    assert first["evidence"]["failing_with"].startswith("429 RL = rate limited locally")
    assert "now mostly 429 RL" in first["message"]


def test_the_callees_refusals_rank_right_after_the_change_that_made_them() -> None:
    """The sidecar's refusals are errors of section-capacity (429 with flag RL, as its own proxy
    reported them; enrol-api's proxy relayed a plain 429): the walk goes down to it."""
    second = json.loads(diagnose("enrol-api").stdout)["findings"][1]
    assert second["subject"] == "Service courses/section-capacity"
    assert names_the_rate_limit(second) and second["caused_by"] == [f"MSH0290 {FILTER_SUBJECT}"]
    assert second["evidence"]["by_flag"]["RL"]["meaning"] == "rate limited locally"


def evening_before() -> Report:
    """The same mesh with the EnvoyFilter applied the evening before (16 h ago): the limiter
    passed the ordinary day's traffic all night and morning."""
    return _evening_report(ServiceRef("enrol", "enrol-api"))


@cache
def _evening_snapshot() -> Any:
    sc = enrolment(16 * 3600.0, name="enrolment-rate-limited-evening")
    return build_snapshot(render_bundle(sc), origin="demo:enrolment-rate-limited-evening")


def _evening_report(service: ServiceRef) -> Report:
    return engine_diagnose(_evening_snapshot(), service, Settings())


def test_with_the_filter_applied_the_evening_before_enrol_api_still_fails() -> None:
    report = evening_before()
    assert report.status == "failing"
    assert report.findings and report.findings[0].severity.value == "error"


def test_with_the_filter_applied_the_evening_before_the_first_finding_still_points_at_section_capacity() -> None:
    """No change near the onset to tie it to: the hop's refusals alone take the walk down."""
    first = evening_before().findings[0]
    assert first.subject in AT_THE_LIMITED_SERVICE, (first.code, first.subject)


# -- what diagnose says: the rate-limited service --------------------------------------------

def test_the_rate_limited_service_is_failing_with_the_limit_named() -> None:
    result = diagnose("section-capacity")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["status"] == "failing", (doc["status"], doc["findings"])
    first = doc["findings"][0]
    assert points_at_the_limited_service(first), first
    assert names_the_rate_limit(first) or first["subject"] == FILTER_SUBJECT, first


def test_the_rate_limited_services_own_finding_counts_the_refusals() -> None:
    """Its MSH0401 counts the sidecars' refusals as its errors (a fifth of 150 req/s), by flag RL."""
    doc = json.loads(diagnose("section-capacity").stdout)
    [own] = [f for f in doc["findings"] if (f["code"], f["subject"]) == ("MSH0401", "Service courses/section-capacity")]
    assert own["evidence"]["error_ratio"] == pytest.approx(0.2)
    assert set(own["evidence"]["by_flag"]) == {"RL"} and set(own["evidence"]["by_code"]) == {"429"}


def test_the_rate_limited_services_finding_is_tied_to_the_envoyfilter() -> None:
    """Its refusals' onset is timed on its own series (the history counts 429 RL as errors), 7 min
    after the EnvoyFilter's creation."""
    doc = json.loads(diagnose("section-capacity").stdout)
    [own] = [f for f in doc["findings"] if (f["code"], f["subject"]) == ("MSH0401", "Service courses/section-capacity")]
    assert FILTER_SUBJECT in own["evidence"]["after_change"]
    assert doc["findings"][0]["subject"] == FILTER_SUBJECT
