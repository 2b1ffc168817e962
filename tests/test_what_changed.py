"""Issue 10 Build 4's Must show: the onset ordering and the change correlation in the text and the
JSON output of library scenarios (``diagnose`` through the CLI, from their bundles), and no onset
that becomes a finding on any healthy mesh of the library.

The "What changed" sections are golden files (regenerate with ``MESHOBS_UPDATE_GOLDEN=1``); the
JSON is asserted field by field.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from click.testing import CliRunner

from meshobs.checks.base import Settings
from meshobs.cli.main import cli
from meshobs.demo.scenarios import LIBRARY
from meshobs.engine import diagnose_all
from meshobs.timeline import timeline_of
from tests.support.scenarios import scenario, snapshot
from tests.test_diagnose_cli import check_golden


def diagnose(name: str, service: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["diagnose", "--from", f"demo:{name}", service, *args], catch_exceptions=False)
    return result.exit_code, result.stdout


def section(text: str) -> str:
    """The "What changed" section of a text diagnosis (up to the blank line after it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("What changed"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def timeline(name: str, service: str) -> dict:
    code, out = diagnose(name, service, "-o", "json")
    assert code == 1
    return json.loads(out)


def clock(iso: str | None) -> str:
    assert iso is not None
    return datetime.fromisoformat(iso).strftime("%H:%M:%S")


# -- a DestinationRule edited 40 s before a circuit breaker started shedding ------------------

def test_dr_change_onset_text() -> None:
    code, out = diagnose("dr-change-onset", "rides/booking-api", "--no-color")
    assert code == 1
    check_golden("what-changed-dr-change-onset.txt", section(out))


def test_dr_change_onset_json_orders_the_onsets_and_names_the_change() -> None:
    doc = timeline("dr-change-onset", "rides/booking-api")
    tl = doc["timeline"]
    assert tl["checked"] and tl["resolution_s"] == 15.0 and tl["lookback_s"] == 600.0
    onsets = {(o["service"], o["signal"]): o for o in tl["onsets"]}
    assert set(onsets) == {("fares/surge-calculator", "errors"), ("rides/booking-api", "errors")}
    surge, booking = onsets[("fares/surge-calculator", "errors")], onsets[("rides/booking-api", "errors")]
    # The 503 UO exist only in booking-api's view of its calls, from 11:40:00 (the authored onset).
    assert (clock(surge["started"]), surge["seen_by"]) == ("11:40:00", "callers")
    assert surge["edges"] == ["rides/booking-api-v15"]
    assert (surge["before"], surge["after"]) == (0.0, pytest.approx(0.18, abs=1e-6))
    for o, through in ((surge, None), (booking, "fares/surge-calculator")):
        assert o["change"]["subject"] == "DestinationRule fares/surge-calculator"
        assert (o["change"]["kind"], o["change"]["what"], clock(o["change"]["at"])) == ("config", "changed", "11:39:20")
        assert o["lead_s"] == 40.0 and o["through"] == through
    assert tl["order"] == ["fares/surge-calculator", "rides/booking-api"]
    # The change ranks first, the mechanism after it; both name the onset and the change.
    first, second = doc["findings"][:2]
    assert (first["code"], first["subject"]) == ("MSH0290", "DestinationRule fares/surge-calculator")
    assert first["evidence"]["lead_s"] == 40.0 and clock(first["evidence"]["errors_started"]) == "11:40:00"
    assert (second["code"], second["subject"]) == ("MSH0405", "Service fares/surge-calculator")
    assert clock(second["evidence"]["errors_started"]) == "11:40:00"
    assert second["evidence"]["after_change"].startswith("DestinationRule fares/surge-calculator changed at 11:39:20")
    assert "MSH0290 DestinationRule fares/surge-calculator" in doc["findings"][2]["caused_by"]


# -- a Sidecar that cut billing off its tax engine ---------------------------------------------

def test_sidecar_egress_text() -> None:
    code, out = diagnose("sidecar-egress-blackhole", "billing/invoice-api", "--no-color")
    assert code == 1
    check_golden("what-changed-sidecar-egress-blackhole.txt", section(out))


def test_sidecar_egress_json_names_the_sidecar_nine_seconds_before() -> None:
    tl = timeline("sidecar-egress-blackhole", "billing/invoice-api")["timeline"]
    (onset,) = tl["onsets"]
    assert (onset["service"], onset["signal"], onset["seen_by"]) == ("billing/invoice-api", "errors", "outbound")
    assert clock(onset["started"]) == "11:54:00" and onset["before"] == 0.0
    # 13 of the 27 req/s invoice-api sends now go to BlackHoleCluster.
    assert onset["after"] == pytest.approx(13 / 27, rel=1e-3)
    assert (onset["change"]["subject"], onset["change"]["what"], onset["lead_s"]) == \
        ("Sidecar billing/default", "created", 9.0)
    # istiod's push to invoice-api's proxies came later (4 s before): a delivery, listed but not named.
    push = [c for c in tl["changes"] if c["kind"] == "xds" and c["subject"] == "Workload billing/invoice-api-v2"]
    assert push and all(clock(c["at"]) == "11:53:56" for c in push)


# -- a slow database five hops down: the order of onsets walks down to it ------------------

def test_deep_chain_onsets_start_at_the_bottom() -> None:
    code, out = diagnose("deep-chain-timeout", "logistics/shipment-api", "--no-color")
    assert code == 1
    check_golden("what-changed-deep-chain-timeout.txt", section(out))
    tl = timeline("deep-chain-timeout", "logistics/shipment-api")["timeline"]
    assert tl["order"] == ["freight/tariff-db", "pricing/rate-engine", "carriers/carrier-gateway",
                           "logistics/route-optimizer", "logistics/shipment-api"]
    errors = {o["service"]: clock(o["started"]) for o in tl["onsets"] if o["signal"] == "errors"}
    assert errors == {"freight/tariff-db": "11:42:00", "pricing/rate-engine": "11:42:10",
                      "carriers/carrier-gateway": "11:42:15", "logistics/route-optimizer": "11:42:20",
                      "logistics/shipment-api": "11:42:30"}
    assert all(o["change"] is None for o in tl["onsets"])  # nothing changed: none is named


# -- healthy meshes: nothing starts, nothing is blamed --------------------------------------------

HEALTHY = [name for name in LIBRARY if (e := scenario(name).expect) is not None and e.healthy]


@pytest.mark.parametrize("name", HEALTHY)
def test_no_onset_on_a_healthy_mesh(name: str) -> None:
    """Canary within SLO, mirroring, chaos faults, background errors, a batch job's bursts,
    certificates rotating, old restarts: no symptom starts in their hour, no change is blamed.
    (Intended noise that has been there all along -- a mirror's or a chaos test's errors -- is
    "already there", never an onset.)"""
    snap = snapshot(name)
    tl = timeline_of(snap, Settings())
    assert tl.checked, tl.reason
    assert [(str(o.service), o.signal) for o in tl.onsets if o.started is not None] == []
    assert all(o.change is None for o in tl.onsets)
    mesh = diagnose_all(snap, Settings())
    assert [f.subject for f in mesh.findings if f.code == "MSH0290"] == []
