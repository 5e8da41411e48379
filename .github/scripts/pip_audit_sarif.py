"""Turn pip-audit's JSON report into SARIF 2.1.0, for GitHub code scanning.

pip-audit has no SARIF output of its own. Each finding points at the line of the
requirements file that pins the package, so the alert lands where the fix goes.

    python .github/scripts/pip_audit_sarif.py pip-audit.json requirements.txt ... > out.sarif
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

TOOL_URI = "https://pypi.org/project/pip-audit/"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pin_locations(requirement_files: list[str]) -> dict[str, tuple[str, int]]:
    """Package name -> (file, line) where it is pinned (first file wins)."""
    where: dict[str, tuple[str, int]] = {}
    for path in requirement_files:
        for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*==", line)
            if match:
                where.setdefault(_normalise(match.group(1)), (path, number))
    return where


def to_sarif(report: dict, requirement_files: list[str]) -> dict:
    where = _pin_locations(requirement_files)
    fallback = (requirement_files[0] if requirement_files else "requirements.txt", 1)
    rules: dict[str, dict] = {}
    results = []
    for dep in report.get("dependencies", []):
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            rules.setdefault(vuln["id"], {
                "id": vuln["id"],
                "shortDescription": {"text": f"{vuln['id']} in {dep['name']}"},
                "fullDescription": {"text": (vuln.get("description") or vuln["id"])[:1000]},
                "helpUri": f"https://osv.dev/vulnerability/{vuln['id']}",
                "properties": {"tags": ["security", "dependency"]},
            })
            path, line = where.get(_normalise(dep["name"]), fallback)
            text = (f"{dep['name']} {dep['version']} is affected by {vuln['id']}"
                    + (f" ({aliases})" if aliases else "") + f"; fixed in: {fixes}.")
            results.append({
                "ruleId": vuln["id"],
                "level": "error" if vuln.get("fix_versions") else "warning",
                "message": {"text": text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": path},
                    "region": {"startLine": line},
                }}],
            })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pip-audit", "informationUri": TOOL_URI,
                                "rules": list(rules.values())}},
            "results": results,
        }],
    }


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    report = json.loads(Path(argv[1]).read_text())
    json.dump(to_sarif(report, argv[2:]), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
