"""Every key binding of the dashboard, with an id users can rebind in the config file.

``dashboard: {keys: {ID: KEY}}`` in meshobs.yaml rebinds by id (Textual's keymap: ``KEY`` is
a key name or several separated by commas, e.g. ``{quit: "ctrl+q", down: "j,n"}``). The help
screen is generated from these tables and the keymap in effect, so it never disagrees with
what the keys do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Key:
    """One binding: ``id`` (what the config file names), default ``key``, ``action``, the words
    for help, and (when shown in the footer, which holds what fits at 80 columns) a short label."""

    id: str
    key: str
    action: str
    description: str
    footer: str = ""  # "": not in the footer
    # Keys that move the focus to a prompt act first (priority), before the keys typed after
    # them are routed: a pasted "/cart⏎" must land in the search box, not in the table.
    priority: bool = False

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.footer or self.description, show=bool(self.footer),
                       id=self.id, priority=self.priority)


# (group title, keys); the group names the screen the keys work on.
APP = ("Everywhere", (
    Key("quit", "q", "quit", "Quit", footer="Quit"),
    Key("help", "question_mark", "help", "Help", footer="Help"),
    Key("command", "colon", "command", "Command: :svc :proxies :findings :graph :ns", footer="Cmd",
        priority=True),
    Key("findings", "f", "findings", "Findings of the mesh", footer="Findings"),
    Key("refresh", "r", "refresh", "Refresh now"),
    Key("pause", "p", "toggle_pause", "Pause / resume live refresh"),
    Key("time_range", "w", "cycle_range", "Time range: 5m, 15m, 1h, 6h (re-queries)"),
    Key("save", "s", "save", "Save the snapshot as a bundle"),
))
BACK = Key("back", "escape", "back", "Back", footer="Back")
MOVE = ("Lists and tables", (
    Key("down", "j", "cursor_down", "Move down (also ↓)"),
    Key("up", "k", "cursor_up", "Move up (also ↑)"),
))
TABS = ("Screens with tabs", (
    Key("next_tab", "tab", "next_tab", "Next tab"),
    Key("prev_tab", "shift+tab", "prev_tab", "Previous tab"),
    *(Key(f"tab_{n}", str(n), f"tab_number({n})", f"Tab {n}") for n in range(1, 7)),
))
OVERVIEW = ("Services (overview)", (
    Key("open", "enter", "open", "Open the service"),
    Key("search", "slash", "search", "Search: text, ns:NAME, health:failing", footer="Search", priority=True),
    Key("namespace", "n", "cycle_namespace", "Cycle namespace filter", footer="Namespace"),
    Key("health", "h", "cycle_health", "Cycle health filter"),
    Key("sort", "o", "cycle_sort", "Cycle sort column", footer="Sort"),
    Key("reverse", "O", "reverse_sort", "Reverse the sort"),
    Key("graph", "G", "graph", "Graph of the selected service"),
    Key("clear", "escape", "clear_filter", "Clear search and filters"),
))
SERVICE = ("Service", (
    Key("tab_traffic", "t", "tab('traffic')", "Traffic tab"),
    Key("tab_proxies", "x", "tab('proxies')", "Proxies tab (enter: the pod's Envoy)"),
    Key("tab_diagnosis", "d", "tab('diagnosis')", "Diagnosis tab (enter: the finding)", footer="Diagnosis"),
    Key("tab_traces", "T", "tab('traces')", "Traces tab"),
    Key("tab_config", "g", "tab('config')", "Config tab"),
    Key("service_graph", "G", "graph", "Graph of this service"),
    Key("yaml", "y", "yaml", "YAML of the selected resource (live vs intended)", footer="YAML"),
    Key("copy", "c", "copy", "Copy the finding (markdown) or trace link"),
))
FINDINGS = ("Findings", (
    Key("open_finding", "enter", "open", "Open the finding (evidence, doc)"),
    Key("copy_finding", "c", "copy", "Copy as markdown"),
))
FINDING = ("A finding", (
    Key("finding_service", "enter", "open_service", "Open its service", footer="Open service"),
    Key("finding_copy", "c", "copy", "Copy as markdown", footer="Copy"),
))
PROXIES = ("Proxies", (
    Key("open_proxy", "enter", "open", "Open the pod's Envoy (proxy-config)"),
    Key("proxies_search", "slash", "search", "Search pods", footer="Search", priority=True),
))
PROXY = ("A pod's Envoy (proxy-config)", (
    Key("proxy_fetch", "u", "fetch", "Fetch this pod's Envoy admin data now", footer="Fetch now"),
))
GRAPH = ("Graph", (
    Key("graph_open", "enter", "recentre", "Centre on the selected peer", footer="Centre"),
    Key("graph_service", "v", "open_service", "Open the centred service", footer="Open service"),
))
YAML = ("YAML", (
    Key("yaml_layout", "l", "layout", "Side by side / one above the other", footer="Layout"),
))

GROUPS = (APP, MOVE, TABS, OVERVIEW, SERVICE, FINDINGS, FINDING, PROXIES, PROXY, GRAPH, YAML)


def bindings(*groups: tuple[str, tuple[Key, ...]], back: bool = True) -> list[BindingType]:
    """The Textual bindings of ``groups`` (plus esc = back unless ``back`` is False)."""
    out: list[BindingType] = [BACK.binding()] if back else []
    for _title, keys in groups:
        out.extend(k.binding() for k in keys)
    return out


def known_ids() -> set[str]:
    return {BACK.id} | {k.id for _t, keys in GROUPS for k in keys}


def check_keymap(keymap: Mapping[str, str]) -> list[str]:
    """Problems with a ``dashboard.keys`` mapping, in words (unknown ids, empty keys)."""
    import difflib

    problems = []
    ids = sorted(known_ids())
    for binding_id, key in keymap.items():
        if binding_id not in ids:
            close = difflib.get_close_matches(binding_id, ids, n=1, cutoff=0.6)
            guess = f"did you mean {close[0]}? " if close else ""
            problems.append(f"dashboard.keys.{binding_id}: unknown action ({guess}known: {', '.join(ids)})")
        elif not str(key).strip():
            problems.append(f"dashboard.keys.{binding_id}: no key given")
    return problems


KEY_NAMES = {"question_mark": "?", "colon": ":", "slash": "/", "escape": "esc", "shift+tab": "S-tab"}


def key_label(key: str) -> str:
    """``question_mark,ctrl+h`` -> ``? ctrl+h``."""
    return " ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


def help_lines(keymap: Mapping[str, str]) -> list[str]:
    """Every binding, by group, with the key in effect (the keymap overrides the defaults)."""
    lines = []
    for title, keys in GROUPS:
        lines.append(f"[b]{title}[/b]")
        entries = [(key_label(keymap.get(k.id, k.key)), k.description, k.id) for k in keys]
        if title == "Everywhere":
            entries.append((key_label(keymap.get(BACK.id, BACK.key)), "Back (close a view)", BACK.id))
        for key, words, binding_id in entries:
            lines.append(f"  {key:<7} {words:<44} {binding_id}")
        lines.append("")
    return lines
