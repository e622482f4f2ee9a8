"""The bench's one table (row | cruxcelery | peer | ratio | goal | met?), the machine it ran on,
and ``bench/RESULTS.md``."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass
class Row:
    name: str
    crux: str
    peer: str = "—"
    ratio: str = "—"
    goal: str = "—"
    met: bool | None = None  # None: no goal, or not measured

    @property
    def verdict(self) -> str:
        return "—" if self.met is None else ("yes" if self.met else "NO")


def ratio(value: float, peer: float) -> str:
    return f"{value / peer:.2f}" if peer else "—"


COLUMNS = ("row", "cruxcelery", "peer", "ratio", "goal", "met?")


def _cells(row: Row) -> tuple[str, ...]:
    return row.name, row.crux, row.peer, row.ratio, row.goal, row.verdict


def text_table(rows: list[Row]) -> str:
    cells = [COLUMNS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return f"{commit}{' (with uncommitted changes)' if dirty else ''}"


def machine(redis_version: str, postgres_version: str) -> list[tuple[str, str]]:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("RAM", _ram()),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", platform.python_version()),
        ("Redis", redis_version),
        ("PostgreSQL", postgres_version),
        ("packages", ", ".join(f"{p} {_version(p)}" for p in (
            "celery", "kombu", "redis", "pydantic", "opentelemetry-sdk", "opentelemetry-instrumentation-celery",
            "dbos", "psycopg"))),
        ("commit", _git()),
        ("load average at start (1, 5, 15 min)", load),
    ]


def write(path: Path, command: str, machine_rows: list[tuple[str, str]], rows: list[Row], log: str,
          elapsed_s: float, notes: list[str]) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {now}, in {elapsed_s / 60:.1f} minutes; every figure below, DBOS's included, "
        "comes from that one run on this machine. Re-run with `make bench` (it installs the `bench` extra: DBOS, "
        "pyinstrument, py-spy) with Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432.",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in [*machine_rows, ("load average at the end", load)]),
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
        "## How each row is measured",
        "",
        *(f"- {note}" for note in notes),
        "",
        "## Output of the run",
        "",
        "```",
        log.rstrip(),
        "```",
        "",
    ]
    path.write_text("\n".join(parts))
