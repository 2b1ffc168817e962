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
