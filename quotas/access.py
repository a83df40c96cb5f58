"""The one place the model-access decision is made.

A tenant's deny rules win over everything; when the tenant has allow rules the model must match
one; when the key has its own allow-list the model must match that too."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    tenant_allow: tuple[re.Pattern[str], ...]
    tenant_deny: tuple[re.Pattern[str], ...]
    key_allow: tuple[re.Pattern[str], ...]


def compile_patterns(patterns: list[str] | tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(fnmatch.translate(p)) for p in patterns if p)


def _matches_any(patterns: tuple[re.Pattern[str], ...], model: str) -> bool:
    return any(p.match(model) for p in patterns)


def model_allowed(policy: AccessPolicy, model: str) -> bool:
    if _matches_any(policy.tenant_deny, model):
        return False
    if policy.tenant_allow and not _matches_any(policy.tenant_allow, model):
        return False
    return not (policy.key_allow and not _matches_any(policy.key_allow, model))
