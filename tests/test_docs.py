"""The documentation: every link between the Markdown files resolves (file and heading), and
the configuration examples that say they work as written do."""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from quotas.models import CostQuota, Tenant
from tests.doc_examples import ROOT, code_block

DOCUMENTS = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")])
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
_FENCED = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a document's headings: lower case, punctuation dropped, spaces as
    hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCED.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(document: Path, *, root: Path = ROOT) -> list[str]:
    """The relative links of ``document`` (outside code) whose file or heading does not exist."""
    text = re.sub(r"`[^`\n]*`", "", _FENCED.sub("", document.read_text()))
    broken = []
    for link in _LINK.findall(text):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (document.parent / path).resolve() if path else document
        if not target.exists():
            broken.append(f"{link}: no file {target.relative_to(root)}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target.read_text()):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(root)}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_between_the_documents_resolves(document):
    assert broken_links(document) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n\n## Some `code` heading: yes\n\n## Title\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#some-code-heading-yes) [again](other.md#title-1) [web](https://x.org/a.md)\n"
        "`[code](gone.md)` [gone](gone.md) [bad](other.md#nowhere) [self](#title-here)\n\n"
        "# Title here\n\n```\n[fenced](gone.md)\n# Not a heading\n```\n[fence](#not-a-heading)\n"
    )

    assert broken_links(page, root=tmp_path.resolve()) == [
        "gone.md: no file gone.md",
        "other.md#nowhere: no heading #nowhere in other.md",
        "#not-a-heading: no heading #not-a-heading in page.md",
    ]


def apply(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    out = StringIO()
    call_command("applyconfig", str(path), stdout=out)
    return out.getvalue().splitlines()


EXAMPLES = [
    (
        "README.md",
        "Real upstreams",
        [
            "created provider openai",
            "created provider anthropic",
            "created model gpt-4o-mini",
            "created deployment gpt-4o-mini -> openai/gpt-4o-mini",
            "created model claude-sonnet",
            "created deployment claude-sonnet -> anthropic/claude-sonnet-4-5",
        ],
    ),
    (
        "docs/limits-and-quotas.md",
        "Rate limits and cost quotas",
        [
            "created tier standard",
            "created tier standard model line gpt-4o*",
            "created tenant acme",
            "created tenant acme quota month hard",
        ],
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("document", "heading", "created"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_the_documented_example_applies_as_written(tmp_path, document, heading, created):
    example = code_block(document, heading=heading)

    assert apply(tmp_path, example) == created
    assert apply(tmp_path, example) == ["no changes"]


@pytest.mark.django_db
def test_the_limits_example_sets_the_tier_and_the_quota_it_shows(tmp_path):
    apply(tmp_path, code_block("docs/limits-and-quotas.md", heading="Rate limits and cost quotas"))

    tenant = Tenant.objects.select_related("tier").get(name="acme")
    assert tenant.tier is not None
    assert (tenant.tier.algorithm, tenant.tier.requests_per_minute, tenant.tier.max_parallel) == (
        "sliding_window",
        600,
        20,
    )
    quota = CostQuota.objects.get(tenant=tenant)
    assert (quota.period, quota.limit_usd, quota.hard, quota.alert_at) == (
        "month",
        Decimal("100.00"),
        True,
        Decimal("0.8"),
    )
