from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ratify.errors import ConfigurationError
from ratify.settings import PROJECT_ROOT, Settings, documented_settings, load_settings


def test_defaults_run_on_sqlite_in_var(tmp_path: Path) -> None:
    settings = load_settings({"RATIFY_VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'ratify.db'}"
    assert settings.env == "development" and settings.log_format == "console"


def test_development_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    first = load_settings({"RATIFY_VAR_DIR": str(tmp_path)})
    second = load_settings({"RATIFY_VAR_DIR": str(tmp_path)})
    key_file = tmp_path / "secret_key"
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_production_refuses_to_start_without_a_secret_and_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="RATIFY_SECRET_KEY is not set"):
        load_settings({"RATIFY_ENV": "production", "RATIFY_VAR_DIR": str(tmp_path)})
    assert not (tmp_path / "secret_key").exists()


def test_production_logs_json_by_default(tmp_path: Path) -> None:
    settings = load_settings(
        {"RATIFY_ENV": "production", "RATIFY_SECRET_KEY": "k" * 40, "RATIFY_VAR_DIR": str(tmp_path)}
    )
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RATIFY_ENV", "staging", "RATIFY_ENV must be"),
        ("RATIFY_TRUSTED_PROXIES", "10.0.0.0/8, not-an-ip", "not an IP address"),
        ("RATIFY_SESSION_MAX_AGE", "soon", "whole number"),
        ("RATIFY_DEFAULT_LANGUAGE", "fr", "RATIFY_DEFAULT_LANGUAGE must be one of"),
        ("RATIFY_BASE_URL", "ratify.example.org", "must start with http"),
        ("RATIFY_SECRET_KEY", "short", "at least 32"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings({name: value, "RATIFY_VAR_DIR": str(tmp_path)})


def test_values_are_parsed_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "RATIFY_VAR_DIR": str(tmp_path),
            "RATIFY_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
            "RATIFY_SESSION_MAX_AGE": "600",
            "RATIFY_WORKER_POLL_SECONDS": "0.5",
            "RATIFY_DATABASE_URL": "postgresql+psycopg://u@h/db",
        }
    )
    assert settings.trusted_proxies == ("10.0.0.1", "192.168.0.0/16")
    assert settings.session_max_age == 600 and settings.worker_poll_seconds == 0.5
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings = load_settings({"RATIFY_VAR_DIR": str(tmp_path)})
    with pytest.raises(AttributeError):
        settings.env = "production"  # type: ignore[misc]


def test_secret_key_is_not_in_repr(tmp_path: Path) -> None:
    settings = load_settings({"RATIFY_VAR_DIR": str(tmp_path)})
    assert settings.secret_key not in repr(settings)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    names = [name for name, _ in documented_settings()]
    assert len(names) == len(Settings.__dataclass_fields__)
    missing = [name for name in names if f"`{name}`" not in readme]
    assert missing == []


def test_trusted_proxies_are_normalized_for_uvicorn(tmp_path: Path) -> None:
    settings = load_settings(
        {"RATIFY_VAR_DIR": str(tmp_path), "RATIFY_TRUSTED_PROXIES": "10.0.0.1/8, 192.0.2.7, ::1"}
    )
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7", "::1")


def test_every_permission_is_documented_in_the_readme_with_its_roles() -> None:
    from ratify.authz import ROLE_PERMISSIONS, Permission, Role

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for permission in Permission:
        line = next(
            (x for x in readme.splitlines() if x.startswith(f"| `{permission.value}` |")), None
        )
        assert line is not None, f"{permission.value} is not in README's permission table"
        cells = [c.strip() for c in line.strip("|").split("|")[1:]]
        roles = [Role.ADMIN, Role.STAFF, Role.COMMITTEE, Role.OBSERVER]
        assert cells == ["✓" if permission in ROLE_PERMISSIONS[r] else "" for r in roles], (
            permission
        )


def test_import_check_processes_default_to_one_and_refuse_zero(tmp_path: Path) -> None:
    environ = {"RATIFY_VAR_DIR": str(tmp_path)}
    assert load_settings(environ).import_check_processes == 1
    assert (
        load_settings({**environ, "RATIFY_IMPORT_CHECK_PROCESSES": "3"}).import_check_processes == 3
    )
    with pytest.raises(ConfigurationError, match="RATIFY_IMPORT_CHECK_PROCESSES"):
        load_settings({**environ, "RATIFY_IMPORT_CHECK_PROCESSES": "0"})
