"""Every `docs/CLAIMS.md, claim N` cited in the repository exists in docs/CLAIMS.md."""

import pathlib
import re

ROOT = pathlib.Path(__file__).parents[1]
CLAIMS = (ROOT / "docs" / "CLAIMS.md").read_text()
CITATION = re.compile(r"docs/CLAIMS\.md,\s+claims?\s+([\d\-\s,and]+)")


def _cited_numbers():
    files = [*ROOT.joinpath("kgrad").rglob("*.py"), ROOT / "README.md"]
    for path in files:
        text = " ".join(path.read_text().split())
        for match in CITATION.finditer(text):
            numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
            yield path.relative_to(ROOT), numbers


def test_claims_are_numbered_from_1_without_gaps():
    numbers = [int(n) for n in re.findall(r"^\| (\d+) \|", CLAIMS, re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == 16


def test_every_cited_claim_exists():
    cited = list(_cited_numbers())
    assert len(cited) >= 20  # the zoo, the diagnosis, the schedule, the demo
    known = set(re.findall(r"^\| (\d+) \|", CLAIMS, re.MULTILINE))
    for path, numbers in cited:
        assert numbers and all(str(n) in known for n in numbers), (path, numbers)
