"""The repository explains itself: every rule number the code prints can be looked up in
docs/rules.md, and no tracked file points at material outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from issuance.applications.express import ExpressReason

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "rules.md"
PACKAGES = ("card", "emulator", "hsm", "pki", "issuance", "bench")

# A refusal names its rule as the first argument: Refused("W3", …), refuse("I4", …).
REFUSAL = re.compile(r"\b(?:Refused|CardSpoiled|_refused|refuse|Refusal)\(\s*[\"']([^\"']+)[\"']")
# Messages, notes and comments: "rule 4.8(3)", "ref. 2a, 6.3", "jpki-rules 1.5/1.6", "rule I5".
NUMBER = r"(?:\d+\.\d+(?:\(\d+\))?|\d+[a-c]\b|[ICW]\d+\b)"
CITED = re.compile(rf"\b(?:rule|ref\.|jpki-rules)\s+({NUMBER}(?:\s*(?:,|/|and)\s*{NUMBER})*)")
# The first cell of a table row in docs/rules.md: "| 4.8(3) | …".
ROW = re.compile(r"^\|\s*([0-9A-Z][0-9A-Za-z.()]*)\s*\|", re.MULTILINE)


def python_sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def rules_the_code_prints() -> dict[str, str]:
    """Rule number -> one place that prints or cites it."""
    found: dict[str, str] = {}
    for path in python_sources():
        text = path.read_text(encoding="utf-8")
        for pattern in (REFUSAL, CITED):
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                for number in re.findall(NUMBER, match.group(1)) if pattern is CITED \
                        else [match.group(1)]:
                    found.setdefault(number, f"{path.relative_to(ROOT)}:{line}")
    for reason in ExpressReason:  # built at run time: f"4.8({number})"
        found.setdefault(reason.rule, f"issuance/applications/express.py ({reason.value})")
    return found


def documented_rules() -> set[str]:
    return set(ROW.findall(RULES.read_text(encoding="utf-8")))


def test_the_scan_finds_the_rules_it_must() -> None:
    """Guard the guard: the patterns still see each kind of citation."""
    printed = rules_the_code_prints()
    for number in ("I1", "W7", "C7", "3.1", "4.6", "4.8", "4.8(3)", "4.8(9)", "1.9", "4.11"):
        assert number in printed, number


def test_every_rule_the_code_prints_is_in_docs_rules() -> None:
    documented = documented_rules()
    missing = {n: where for n, where in rules_the_code_prints().items() if n not in documented}
    assert not missing, "rule numbers printed or cited by the code but not in docs/rules.md: " + \
        ", ".join(f"{n} ({where})" for n, where in sorted(missing.items()))


def test_no_tracked_file_points_outside_the_repository() -> None:
    # The needles are split so this file does not match itself.
    needles = [("../" + "shared").encode(), ("shared/" + "reference").encode()]
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout.split(b"\0")
    assert len(tracked) > 50, "git ls-files found too few files: not the repository?"
    offending = []
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if not path.is_file():
            continue
        data = path.read_bytes()
        offending += [f"{name.decode()}: {n.decode()}" for n in needles if n in data]
    assert not offending, "files pointing outside the repository: " + "; ".join(offending)


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_links_only_files_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = LINK.findall(readme)
    assert "docs/ARCHITECTURE.md" in targets
    commands = re.findall(r"^(make \w+)", readme, re.MULTILINE)
    assert commands[:2] == ["make demo", "make test"], commands[:2]


def test_every_markdown_link_resolves_inside_the_repository() -> None:
    documents = [ROOT / "README.md", ROOT / "CONTRIBUTING.md",
                 *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for doc in documents:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.exists() or ROOT not in resolved.parents:
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, "links that do not resolve inside the repository: " + ", ".join(broken)
