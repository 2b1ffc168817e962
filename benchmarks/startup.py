"""Start-up cost of short commands, before and after, alternated in the same run.

    .venv/bin/python benchmarks/startup.py --before /path/to/other/checkout --runs 9 [--out NAME]

Each command runs as ``python -m meshobs ...`` in a fresh interpreter with the checkout as the
working directory (so ``-m`` imports that checkout's ``meshobs``), from a clean environment
(no MESHOBS_CONFIG, an empty XDG_CONFIG_HOME: no user config file, so ``diagnose`` without
``--config`` is the built-in demo). Wall time and the child's CPU time (user + system, from
``os.wait4``) per run; medians and the after/before ratio. The machine may be shared: compare
the columns of the same run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMANDS = {
    "meshobs --help": ["--help"],
    "meshobs diagnose --help": ["diagnose", "--help"],
    "meshobs diagnose cart-service (built-in demo, -o json)": ["diagnose", "cart-service", "-o", "json"],
    "meshobs diagnose cart-service (built-in demo, text)": ["diagnose", "cart-service", "--no-color"],
}


def one(checkout: Path, args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "meshobs", *args], cwd=checkout, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)  # the child's own CPU time
    wall = time.monotonic() - start
    return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status), out.decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other checkout (an export of main, precompiled)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--out", help="write the table to benchmarks/results/NAME.md too")
    args = parser.parse_args()
    checkouts = {"before": Path(args.before).resolve(), "after": HERE.parent}
    with tempfile.TemporaryDirectory() as empty:
        env = {k: v for k, v in os.environ.items() if k != "MESHOBS_CONFIG"}
        env.update(XDG_CONFIG_HOME=empty, PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
        rows = []
        load = os.getloadavg()
        for label, command in COMMANDS.items():
            runs: dict[str, list[tuple[float, float]]] = {k: [] for k in checkouts}
            outs: dict[str, set[tuple[int, str]]] = {k: set() for k in checkouts}
            for i in range(args.runs):
                for name in (list(checkouts) if i % 2 == 0 else list(checkouts)[::-1]):
                    wall, cpu, code, out = one(checkouts[name], command, env)
                    runs[name].append((wall, cpu))
                    outs[name].add((code, out))
            med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
            rows.append(f"| {label} | {med['before'][0]:.3f} | {med['after'][0]:.3f} | "
                        f"x{med['after'][0] / med['before'][0]:.2f} | {med['before'][1]:.3f} | {med['after'][1]:.3f} | "
                        f"x{med['after'][1] / med['before'][1]:.2f} | {outs['before'] == outs['after']} |")
    text = "\n".join([
        f"Start-up, {args.runs} runs each, before and after alternated; load average at the start "
        f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}, at the end {os.getloadavg()[0]:.1f}; shared machine (noisy: "
        "compare the columns of the same run)", "",
        "| command | before: wall s (median) | after: wall s (median) | wall ratio | before: CPU s | after: CPU s "
        "| CPU ratio | same stdout and exit code |",
        "|---|---|---|---|---|---|---|---|", *rows])
    print(text)
    if args.out:
        (HERE / "results" / f"{args.out}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
