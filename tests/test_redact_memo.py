"""redact_text remembers its answers for short strings (a big mesh repeats label values
thousands of times); a credential registered later is still masked everywhere."""

from __future__ import annotations

import pytest

from meshobs import redact


def test_a_credential_registered_after_a_string_was_seen_is_masked_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_KNOWN", set())
    monkeypatch.setattr(redact, "_SEEN", {})
    text = "team-ledger-s3cr3tvalue"
    assert redact.redact_text(text) == text
    assert redact.redact_text(text) == text  # remembered
    redact.register_secret("s3cr3tvalue")
    assert redact.redact_text(text) == f"team-ledger-{redact.REDACTED}"
    # What the patterns mask is masked whether remembered or not.
    url = "https://user:pw@example.test/x"
    assert redact.redact_text(url) == redact.redact_text(url) == f"https://{redact.REDACTED}@example.test/x"


def test_urls_register_their_credentials_and_plain_urls_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_KNOWN", set())
    monkeypatch.setattr(redact, "_SEEN", {})
    redact.register_url("http://127.0.0.1:37831/ns-00/db-0000-v1-bk4vzvcmpg-7jmv8")
    assert not redact._KNOWN
    redact.register_url("https://scraper:hunter22@prom.example.test/api?access_token=tok-9876")
    assert {"hunter22", "scraper:hunter22", "tok-9876"} <= redact._KNOWN
    assert redact.is_credential_key("apiKey") and redact.is_credential_key("apiKey")  # remembered alike
    assert not redact.is_credential_key("namespace")


def test_a_config_registers_every_credential_it_holds_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_KNOWN", set())
    monkeypatch.setattr(redact, "_SEEN", {})
    targets = [{"url": f"http://127.0.0.1:15000/ns/pod-{i}", "namespace": "ns", "pod": f"pod-{i}"} for i in range(50)]
    redact.register_config_secrets({
        "sources": {
            "prometheus": {"url": "https://scraper:hunter22@prom.example.test", "headers": {
                "Authorization": "Bearer tok-abcdef", "X-Scope-OrgID": "tenant-1", "X-Api-Key": "k3y-value"}},
            "envoy": {"targets": targets},
            "jaeger": {"url": "http://jaeger.example.test/?access_token=qtok-123"},
            "other": {"password": "pw-plain", "tokens": ["tok-one", "tok-two"], "token_file": "/var/run/tok",
                      "list": ["https://u:pw-in-list@h.example.test", "plain"]},
        },
        "headers": "Bearer not-a-mapping",
    })
    expected = {"hunter22", "scraper:hunter22", "c2NyYXBlcjpodW50ZXIyMg==", "Bearer tok-abcdef", "tok-abcdef",
                "k3y-value", "qtok-123", "pw-plain", "tok-one", "tok-two", "pw-in-list", "u:pw-in-list",
                "dTpwdy1pbi1saXN0",
                "/var/run/tok"}  # token_file: a credential-looking name, as everywhere else
    registered = redact._KNOWN
    assert registered == expected


def test_labels_and_annotations_are_masked_after_a_credential_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_KNOWN", set())
    monkeypatch.setattr(redact, "_SEEN", {})
    monkeypatch.setattr(redact, "_SCRUBBED", {})
    labels = {"team": "ledger-s3cr3tvalue", "port": 8080}
    status = '{"token": "s3cr3tvalue", "revision": "default"}'
    assert redact.redact_values(labels) == {"team": "ledger-s3cr3tvalue", "port": "8080"}
    assert redact.scrub_entry("sidecar.istio.io/status", status) == status
    assert redact.scrub_entry("sidecar.istio.io/status", status) == status  # remembered
    redact.register_secret("s3cr3tvalue")
    assert redact.redact_values(labels)["team"] == f"ledger-{redact.REDACTED}"
    assert "s3cr3tvalue" not in redact.scrub_entry("sidecar.istio.io/status", status)
    assert redact.scrub_entry("api-token", "abc") == redact.REDACTED
    assert redact.scrub_data({"api-token": "abc"})["api-token"] == redact.REDACTED


def test_a_documents_plain_strings_count_against_its_size_bound() -> None:
    """Strings read in place (scrub_data's fast path) count as one value each, as before."""
    doc = {"a": "x", "b": "y", "c": {"d": "z"}}  # five values: three strings and two mappings
    assert redact.scrub_data(doc, budget=[5]) == doc
    with pytest.raises(ValueError, match="too large"):
        redact.scrub_data(doc, budget=[4])
