"""The defaults a provider's empty settings take, and the one check of a provider's settings that
both the admin form and ``applyconfig`` run; what each kind takes, requires and defaults to is
its record's ``settings`` (``registry``). No Django here."""

from __future__ import annotations

from collections.abc import Mapping

from providers.kinds.record import OptionSpec, ProviderSettings, SettingsSpec
from providers.kinds.registry import KINDS, find


def settings_spec(kind: str) -> SettingsSpec:
    """The kind's settings spec; a kind the gateway does not know takes and requires nothing."""
    record = find(kind)
    return record.settings if record is not None else SettingsSpec()


def default_base_url(kind: str, *, region: str = "") -> str:
    template = settings_spec(kind).default_base_url
    if "{region}" in template:
        return template.format(region=region) if region else ""
    return template


def default_api_version(kind: str) -> str:
    return settings_spec(kind).default_api_version


def check_settings(settings: ProviderSettings) -> list[tuple[str, str]]:
    """Problems as ``(field, message)`` pairs; empty when the settings are usable."""
    spec = settings_spec(settings.kind)
    problems = [
        (name, f"'{name}' applies only to {' / '.join(kinds)} providers, not {settings.kind}.")
        for name, kinds in _takers().items()
        if name not in spec.takes and _is_set(settings, name)
    ]
    url = settings.base_url
    if url and not url.startswith(("http://", "https://")):
        problems.append(("base_url", "The base URL must start with http:// or https://."))
    problems.extend((name, message) for name, message in spec.requires if not _is_set(settings, name))
    if spec.check is not None:
        problems.extend(spec.check(settings))
    return problems


def _takers() -> dict[str, list[str]]:
    """Each setting only some kinds take, and the kinds that take it, in the registry's order (the
    order problems are reported in)."""
    takers: dict[str, list[str]] = {}
    for record in KINDS:
        for name in record.settings.takes:
            takers.setdefault(name, []).append(record.name)
    return takers


def _is_set(settings: ProviderSettings, name: str) -> bool:
    if name == "aws_secret_access_key":
        return settings.has_aws_secret_access_key
    return bool(getattr(settings, name))


def option_specs() -> dict[str, tuple[OptionSpec, list[str]]]:
    """Every option some kind reads, with the kinds that read it (registry order)."""
    specs: dict[str, tuple[OptionSpec, list[str]]] = {}
    for record in KINDS:
        for option in record.settings.options:
            specs.setdefault(option.name, (option, []))[1].append(record.name)
    return specs


def check_options(kind: str, options: object) -> list[tuple[str, str]]:
    """Problems of a provider's ``options`` as ``(option, message)`` pairs (``options`` for the
    whole): an option the kind reads must be a number within its bounds; one only other kinds
    read is refused; entries no kind reads pass through untouched."""
    if not isinstance(options, Mapping):
        return [("options", "Options must be a mapping of names to values.")]
    own = {option.name: option for option in settings_spec(kind).options}
    problems: list[tuple[str, str]] = []
    for name, (_, kinds) in option_specs().items():
        if name in options and name not in own:
            problems.append(
                (name, f"Option '{name}' applies only to {' / '.join(kinds)} providers, not {kind}.")
            )
    for name, option in own.items():
        if name not in options or options[name] is None:
            continue
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append((name, f"Option '{name}' must be a number."))
        elif option.minimum is not None and value < option.minimum:
            problems.append((name, f"Option '{name}' must be at least {option.minimum:g}."))
        elif option.maximum is not None and value > option.maximum:
            problems.append((name, f"Option '{name}' must be at most {option.maximum:g}."))
    return problems
