"""What the README and docs say exists: the headline figures are what bench/results/ holds, every make
target they name exists, and every file they link to is there."""
from __future__ import annotations

import re
import subprocess
import sys

from core.settings import PROJECT_ROOT
from evaluation.results_page import README, readme_with_headline, results_page

DOCS = [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
# programs whose output or docstrings tell users what to run (the demo's last lines, harness headers)
PROGRAMS = sorted(p for folder in ("devtools", "evaluation", "services", "workers", "core", "bench", "scripts")
                  for p in (PROJECT_ROOT / folder).rglob("*") if p.suffix in (".py", ".sh"))
NOT_TARGETS = {"every", "nearly", "sure", "it", "a", "the"}  # prose: "make every ...", "make nearly ..."


def test_readme_headline_and_results_page_match_bench_results():
    assert README.read_text() == readme_with_headline(README.read_text()), "README headline is stale: run `make results-page`"
    assert (PROJECT_ROOT / "docs" / "results.md").read_text() == results_page(), "docs/results.md is stale: run `make results-page`"


def test_every_make_target_the_docs_name_exists():
    targets = set(re.findall(r"(?m)^([a-z][a-z-]*):", (PROJECT_ROOT / "Makefile").read_text()))
    listed = subprocess.run(["make", "-s", "targets"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    for doc in DOCS + PROGRAMS:
        for name in set(re.findall(r"\bmake ([a-z][a-z-]*)", doc.read_text())) - NOT_TARGETS:
            assert name in targets, f"{doc.name} names `make {name}`, which the Makefile lacks"
            assert name in listed, f"`make targets` does not describe {name}"


def test_every_linked_file_exists():
    for doc in DOCS:
        for link in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / link).resolve().exists(), f"{doc.name} links to {link}, which does not exist"


def test_every_python_module_the_docs_run_exists():
    for doc in DOCS:
        for module in set(re.findall(r"python -m ([a-z_][a-z_.]*)", doc.read_text())):
            found = subprocess.run([sys.executable, "-c", f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"],
                                   cwd=PROJECT_ROOT, capture_output=True, timeout=60)
            assert found.returncode == 0, f"{doc.name} runs `python -m {module}`, which does not exist"
