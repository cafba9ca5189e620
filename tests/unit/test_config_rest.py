"""Settings of the REST hardening (issue 15): the public directory, the docs pages, CORS origins."""

from __future__ import annotations

import pytest

from py_app.config import SettingsError, load_settings


@pytest.mark.req("SRS-151")
@pytest.mark.parametrize(
    ("value", "expected"), [("on", True), ("ON", True), ("true", True), ("off", False), ("0", False)]
)
def test_public_directory_is_a_switch(value: str, expected: bool) -> None:
    assert load_settings({"ARCANA_PUBLIC_DIRECTORY": value}).public_directory is expected


@pytest.mark.req("SRS-151")
def test_public_directory_is_off_unless_asked_for() -> None:
    assert load_settings({}).public_directory is False
    assert load_settings({"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "s" * 32}).public_directory is False


@pytest.mark.req("SRS-153")
def test_api_docs_are_on_in_development_and_off_in_production_unless_set() -> None:
    production = {"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "s" * 32}
    assert load_settings({}).api_docs_enabled is True
    assert load_settings(production).api_docs_enabled is False
    assert load_settings({**production, "ARCANA_API_DOCS": "on"}).api_docs_enabled is True
    assert load_settings({"ARCANA_API_DOCS": "off"}).api_docs_enabled is False


@pytest.mark.req("SRS-154")
def test_cors_origins_are_none_by_default_and_read_comma_separated() -> None:
    assert load_settings({}).cors_origin_list == ()
    settings = load_settings({"ARCANA_CORS_ORIGINS": " https://App.example.com, http://localhost:5173 ,"})
    assert settings.cors_origin_list == ("https://app.example.com", "http://localhost:5173")
    assert load_settings({"ARCANA_CORS_ORIGINS": "*"}).cors_origin_list == ("*",)


@pytest.mark.req("SRS-002", "SRS-151", "SRS-153", "SRS-154")
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ARCANA_PUBLIC_DIRECTORY", "maybe", "ARCANA_PUBLIC_DIRECTORY: expected on or off, got 'maybe'"),
        ("ARCANA_API_DOCS", "", "ARCANA_API_DOCS: expected on or off, got ''"),
        ("ARCANA_CORS_ORIGINS", "https://app.example.com/", "ARCANA_CORS_ORIGINS: 'https://app.example.com/' is not"),
        ("ARCANA_CORS_ORIGINS", "app.example.com", "ARCANA_CORS_ORIGINS: 'app.example.com' is not an origin"),
        ("ARCANA_CORS_ORIGINS", "ftp://files.example.com", "ARCANA_CORS_ORIGINS: 'ftp://files.example.com' is not"),
        ("ARCANA_CORS_ORIGINS", "https://a.example.com:99999", "ARCANA_CORS_ORIGINS: 'https://a.example.com:99999'"),
        ("ARCANA_CORS_ORIGINS", "https://u:p@a.example.com", "ARCANA_CORS_ORIGINS: 'https://u:p@a.example.com' is"),
    ],
)
def test_a_bad_rest_setting_fails_with_one_line_naming_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert expected in message, message
    assert "\n" not in message
