"""The settings a command needs, and the one line an operator reads for an error they can act on."""

from __future__ import annotations

from shared.errors import ApiError, ConfigurationError, TransientError


class SettingsMissing(Exception):
    pass


def check_settings() -> None:
    """SettingsMissing naming what a project without a backend needs: PROJECT_X_DB_URL (direct, the client_sync
    connection string) or PROJECT_X_URL and PROJECT_X_SERVICE_ROLE_KEY (client, the project's API)."""
    from shared.config import get_settings

    settings = get_settings()
    unset = []
    for project in ("project_a", "project_b"):
        try:
            settings.backend_of(project)
        except ConfigurationError:
            unset.append(project.upper())
    if unset:
        one = len(unset) == 1
        raise SettingsMissing(
            f"{' and '.join(f'{prefix}_DB_URL' for prefix in unset)} {'is' if one else 'are'} not set "
            f"(the client_sync connection {'string' if one else 'strings'}, as the functions get "
            f"{'it' if one else 'them'}), nor {' and '.join(f'{prefix}_URL' for prefix in unset)} with "
            f"{'its' if one else 'their'} service-role {'key' if one else 'keys'} (the client backend)"
        )


def one_line(exc: BaseException) -> str | None:
    """The message of an error an operator can act on, on one line; None for anything else (a bug: traceback)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        problems = [
            ": ".join(filter(None, [".".join(map(str, e["loc"])).upper(), e["msg"].removeprefix("Value error, ")]))
            for e in exc.errors()
        ]
        return "invalid settings: " + "; ".join(problems)
    if isinstance(exc, SettingsMissing):
        return str(exc)
    if isinstance(exc, ConfigurationError):
        return f"invalid settings: {exc}"
    if isinstance(exc, ApiError):
        cause = _root_cause(exc)
        return exc.message if cause is exc else f"{exc.message} ({_described(cause)})"
    if isinstance(exc, TransientError) or type(exc).__module__.startswith("psycopg"):
        return _described(_root_cause(exc))
    return None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _described(exc: BaseException) -> str:
    """`Type: message`, on one line. Of a server's error only its primary message: the detail (`Key (email)=...`,
    `Failing row contains ...`) can quote a patient's data."""
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    text = " ".join(str(primary or exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
