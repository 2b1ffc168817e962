"""Remove credentials from anything meshobs writes or prints: bundles, statuses, reports.

Credentials hide in more places than headers: ``http://user:pass@host`` URLs, ``?access_token=``
query strings, error messages that quote a URL, kubeconfig-like keys. One place knows them all.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

# A key whose value is a credential, matched anywhere in the key name.
_SECRET_KEY = re.compile(
    r"(?i)(authorization|cookie|passw|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"client[-_]?key|credential|signature|certificate[-_]data|key[-_]data|session)"
)
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s?#]+@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:[^=&\s#]*(?:token|secret|passw|api[-_]?key|signature|credential|auth)[^=&\s#]*)=)[^&\s#\"']+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")


def redact_text(text: str) -> str:
    """A string with URL user-info, secret query values, bearer tokens and AWS key ids masked."""
    text = _URL_USERINFO.sub(f"{REDACTED}@", text)
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _AWS_KEY_ID.sub(REDACTED, text)


def is_secret_key(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


def scrub(value: Any) -> Any:
    """A copy of config, request parameters or metadata with every credential masked.

    Header *names* are kept (``Authorization: <redacted>``) so a bundle still shows what was sent.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = str(k)
            if name.lower() == "headers" and isinstance(v, dict):
                out[k] = {hk: REDACTED for hk in v}
            elif is_secret_key(name) and v not in (None, "", [], {}):
                out[k] = REDACTED
            else:
                out[k] = scrub(v)
        return out
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
