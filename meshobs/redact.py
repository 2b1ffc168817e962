"""Remove credentials from anything meshobs writes or prints: bundles, statuses, reports.

Credentials hide in more places than headers: ``http://user:pass@host`` URLs, ``?access_token=``
query strings, error messages that quote a URL, kubeconfig-like keys. One place knows them all.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

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


# Credentials this process sends (header values, URL passwords, tokens in query strings), so a
# server that echoes one back in an error page, or a message quoting it, is masked too.
_KNOWN: set[str] = set()
_MIN_KNOWN = 4  # shorter values would mask ordinary words


def register_secret(value: str, into: set[str] | None = None) -> None:
    """Mask ``value`` wherever :func:`redact_text` looks from now on (this process only); with
    ``into``, only add it to that set (:func:`config_secrets`)."""
    value = value.strip()
    if len(value) < _MIN_KNOWN or value == REDACTED:
        return
    if into is not None:
        into.add(value)
    elif value not in _KNOWN:
        _KNOWN.add(value)
        _SEEN.clear()  # what was clean may hold this one
        _SCRUBBED.clear()


def register_url(url: str, into: set[str] | None = None) -> None:
    """Register the password (and user:password) of a URL and the values of its secret-looking
    query parameters."""
    if "@" not in url and "?" not in url:
        return  # neither user-info nor a query: nothing to register (1,500 Envoy targets' URLs)
    parts = urlsplit(url)
    if parts.password:
        register_secret(parts.password, into)
        register_secret(unquote(parts.password), into)
        userinfo = f"{unquote(parts.username or '')}:{unquote(parts.password)}"
        register_secret(userinfo, into)
        register_secret(base64.b64encode(userinfo.encode()).decode(), into)  # as Basic auth sends it
    for key, value in parse_qsl(parts.query):
        if is_secret_key(key) or is_credential_key(key):
            register_secret(value, into)


# The configuration registered last, and the credentials it held: a live command registers its
# config before anything can fail, then meshobs.collect.collect (which a library caller calls
# directly) registers it again; walking a 5,000-service config costs ~0.04 s each time.
_REGISTERED: tuple[Any, frozenset[str]] | None = None


def register_config_once(raw: Any) -> None:
    """:func:`register_config_secrets` of a configuration's ``raw``, unless this very object was
    the last one registered and its credentials are all still masked. A configuration changed in
    place after it was registered must be registered again with :func:`register_config_secrets`
    (meshobs builds a new Config instead)."""
    global _REGISTERED
    last = _REGISTERED
    if last is not None and last[0] is raw and last[1] <= _KNOWN:
        return
    found = config_secrets(raw)
    for value in found:
        register_secret(value)
    _REGISTERED = (raw, frozenset(found))


def registered_clean(raw: Any) -> None:
    """What :func:`register_config_once` leaves after walking a ``raw`` that holds no
    credential, without the walk (~7 ms at 5,000 services, before anything is asked): for a
    configuration read back from :mod:`meshobs.config_cache`, which records only a configuration
    whose walk found none (this module is part of a record's key, so the walk that vouched for
    it is this one)."""
    global _REGISTERED
    _REGISTERED = (raw, frozenset())


def config_secrets(value: Any) -> set[str]:
    """The credentials :func:`register_config_secrets` finds in ``value``, without registering
    them (e.g. a config holding one is not copied to a cache)."""
    found: set[str] = set()
    register_config_secrets(value, into=found)
    return found


def register_config_secrets(value: Any, key: str = "", into: set[str] | None = None) -> None:
    """Register every credential a validated configuration holds: values of credential-named
    keys and headers (``Bearer <token>`` registers the token), URL user-info and secret query
    values (into ``into`` instead of the process's masks when given)."""
    if isinstance(value, dict):
        for k, v in value.items():
            name = str(k)
            if isinstance(v, str):  # most values, inline (a served big mesh: 7,400 targets x 4 keys)
                if name and _names_a_secret(name):
                    register_secret(v, into)
                if "://" in v and ("@" in v or "?" in v):  # else register_url has nothing to find
                    register_url(v, into)
            elif name.lower() == "headers" and isinstance(v, dict):
                for hk, hv in v.items():
                    if isinstance(hv, str) and _names_a_secret(str(hk)):
                        register_secret(hv, into)
                        scheme, _, token = hv.partition(" ")
                        if token and scheme.lower() in ("bearer", "basic", "token"):
                            register_secret(token, into)
            else:
                register_config_secrets(v, name, into)
    elif isinstance(value, list):
        for v in value:
            register_config_secrets(v, key, into)
    elif isinstance(value, str):
        _register_value(value, key, into)


def _register_value(value: str, key: str, into: set[str] | None = None) -> None:
    if key and _names_a_secret(key):
        register_secret(value, into)
    if "://" in value:
        register_url(value, into)


@functools.lru_cache(maxsize=4096)  # a served big mesh's config repeats four keys 7,400 times
def _names_a_secret(key: str) -> bool:
    return is_secret_key(key) or is_credential_key(key)


def mask_known(text: str) -> str:
    """``text`` with every registered credential replaced, and nothing else touched (safe on a
    JSON body: a plain value becomes ``<redacted>``, the structure stays)."""
    for secret in sorted(_KNOWN, key=len, reverse=True) if _KNOWN else ():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


# redact_text's answers for short strings: a big mesh's Kubernetes lists repeat the same label
# values thousands of times (20,000 calls for 1,500 pods, 5 regular expressions each).
_SEEN: dict[str, str] = {}
_SEEN_MAX, _SEEN_LEN = 50_000, 200


def redact_text(text: str) -> str:
    """A string with URL user-info, secret query values, bearer tokens, AWS key ids and every
    registered credential masked."""
    done = _SEEN.get(text)
    if done is not None:
        return done
    known = len(_KNOWN)
    out = _redact_text(text)
    # Not kept if a credential was registered meanwhile (another thread): it may be in ``text``.
    if len(text) <= _SEEN_LEN and len(_SEEN) < _SEEN_MAX and known == len(_KNOWN):
        _SEEN[text] = out
    return out


def redact_values(values: Mapping[Any, Any]) -> dict[str, str]:
    """``{str(k): redact_text(str(v))}`` of a mapping (labels, selectors), the remembered
    answers looked up inline: a big mesh's lists carry 60,000 label values."""
    seen = _SEEN
    out: dict[str, str] = {}
    for k, v in values.items():
        text = v if v.__class__ is str else str(v)
        done = seen.get(text)
        out[k if k.__class__ is str else str(k)] = done if done is not None else redact_text(text)
    return out


# scrub_entry's answers: a pod's mesh annotations (sidecar.istio.io/status) are the same
# string on every pod of a revision. Forgotten with _SEEN when a credential is registered.
_SCRUBBED: dict[tuple[str, str], str] = {}
_SCRUBBED_MAX, _SCRUBBED_LEN = 20_000, 2_000


def scrub_entry(key: str, value: str) -> str:
    """``scrub_data({key: value})[key]``: one annotation's value, masked as a free-form
    document's would be (remembered for values up to a few kilobytes)."""
    done = _SCRUBBED.get((key, value))
    if done is not None:
        return done
    known = len(_KNOWN)
    out: str = scrub_data({key: value})[key]
    if len(value) <= _SCRUBBED_LEN and len(_SCRUBBED) < _SCRUBBED_MAX and known == len(_KNOWN):
        _SCRUBBED[(key, value)] = out
    return out


def _redact_text(text: str) -> str:
    text = mask_known(text)
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


# -- free-form documents (mesh resource specs, Envoy route matches, node metadata) -------------
# Their keys are the user's own (header names, EnvoyFilter fields), so keys are read as words:
# "X-Api-Key" -> x, api, key. A key is a credential when it holds a secret word (or pair of
# words) and no word that makes it a reference to one: "credentialName" and
# "tls_certificate_sds_secret_configs" name a Kubernetes Secret or an SDS resource, and the
# checks need those names; "client_secret" and "Authorization" are the secret itself.
_SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "pwd", "pass", "secret", "secrets", "token", "tokens",
    "apikey", "credential", "credentials", "authorization", "auth", "cookie", "cookies",
    "signature", "dsn", "session", "bearer", "pat", "privatekey", "passcode", "otp",
})
_SECRET_PAIRS = (("api", "key"), ("access", "key"), ("private", "key"), ("client", "key"),
                 ("secret", "key"), ("signing", "key"), ("encryption", "key"), ("key", "data"),
                 ("certificate", "data"), ("master", "key"))
_REFERENCE_WORDS = frozenset({
    "name", "names", "ref", "refs", "arn", "arns", "path", "paths", "file", "files", "filename",
    "sds", "config", "configs", "provider", "providers", "mode", "type", "kind", "id", "ids",
    "uri", "header", "headers", "forward", "issuer", "audiences", "claim", "claims", "version",
})
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# Fields whose value an {"name"/"key": ..., <value>} pair carries (Kubernetes env, Envoy header
# value options, Jaeger/OTLP tags, Envoy header matchers).
_PAIR_NAMES = ("name", "key")
MAX_NODES = 200_000  # per document: YAML aliases can make a small file an enormous tree
# A value that points at a credential rather than holding it (``privateKey: /etc/certs/key.pem``,
# ``kubernetes://secret-name``) is kept: the checks and the drift comparison need it.
_REFERENCE_VALUE = re.compile(r"^(?:/|file://|kubernetes://|sds://)[^\s]*$")


def key_words(key: str) -> list[str]:
    """``X-Api-Key`` -> ``["x", "api", "key"]``; ``accessKeyID`` -> ``["access", "key", "id"]``."""
    return [w.lower() for w in _WORD.findall(str(key))]


@functools.lru_cache(maxsize=4096)  # a big config or object repeats the same few keys thousands of times
def is_credential_key(key: str) -> bool:
    """Is ``key`` the name of a credential (not of a reference to one)? See the rules above."""
    words = key_words(key)
    found = set(words)
    if found & _REFERENCE_WORDS:
        return False
    if found & _SECRET_WORDS:
        return True
    return any(a in found and b in found and words.index(a) < len(words) - 1 - words[::-1].index(b)
               for a, b in _SECRET_PAIRS)


def scrub_data(value: Any, *, budget: list[int] | None = None) -> Any:
    """A copy of a free-form document with every credential masked, structure kept.

    Masked: string and number values under a credential key (and every string below one), the
    value side of a ``{name: <credential key>, value: ...}`` pair, and credentials inside any
    string (URL user-info, secret query values, bearer/basic tokens, AWS key ids). Booleans stay:
    ``forwardOriginalToken: true`` is a setting, not a secret. Raises ValueError when the
    document is larger than :data:`MAX_NODES` (a YAML alias bomb expands to billions).
    """
    budget = budget if budget is not None else [MAX_NODES]
    return _scrub(value, False, budget)


def _too_large() -> ValueError:
    return ValueError(f"document too large to read (more than {MAX_NODES:,} values; YAML aliases?)")


def _scrub(value: Any, secret: bool, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _too_large()
    if value.__class__ is dict or isinstance(value, Mapping):
        pair = False
        for n in _PAIR_NAMES:
            named = value.get(n)
            if isinstance(named, str) and is_credential_key(named):
                pair = True
                break
        out: dict[str, Any] = {}
        seen = _SEEN
        for k, v in value.items():
            name = k if k.__class__ is str else str(k)
            hidden = False if pair and name in _PAIR_NAMES else secret or pair or is_credential_key(name)
            if v.__class__ is str and not hidden:
                # A plain string under a plain key (most of a spec): what _scrub would make of
                # it, without the call (the budget counts it all the same).
                budget[0] -= 1
                if budget[0] < 0:
                    raise _too_large()
                done = seen.get(v)
                out[name] = done if done is not None else redact_text(v)
            else:
                out[name] = _scrub(v, hidden, budget)
        return out
    if isinstance(value, list | tuple):
        return [_scrub(v, secret, budget) for v in value]
    if isinstance(value, str):
        if secret and value and not _REFERENCE_VALUE.match(value):
            return REDACTED
        return redact_text(value)
    if secret and isinstance(value, int | float) and not isinstance(value, bool):
        return REDACTED
    return value
