import shutil

import pytest

from portal.settings import DEFAULT_CONFIG_DIR, ConfigError, load_domain_config, settings_from_environment


@pytest.fixture
def config_dir(tmp_path):
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_shipped_config_is_valid_and_complete():
    config = load_domain_config()
    keys = {s.key for s in config.catalogue.services}
    self_bookable = {s.key for s in config.catalogue.services if s.self_bookable}
    assert len(self_bookable) == 7
    assert {"t2-psychology", "t2-interventional"} <= keys - self_bookable
    assert config.catalogue.course_for_tier(1).weeks == 8
    assert config.catalogue.course_for_tier(2).weeks == 12


def test_unknown_key_names_the_file_and_key(config_dir):
    _edit(config_dir / "policy.toml", "cancel_cutoff_hours = 24", "cancel_cutoff_hours = 24\ncancel_cutof_hours = 2")
    with pytest.raises(ConfigError) as error:
        load_domain_config(config_dir)
    assert "policy.toml" in str(error.value)
    assert "booking.cancel_cutof_hours: unknown key" in str(error.value)


def test_bad_value_names_the_file_and_key(config_dir):
    _edit(config_dir / "catalogue.toml", "tier = 1", 'tier = "one"')
    with pytest.raises(ConfigError) as error:
        load_domain_config(config_dir)
    assert "catalogue.toml" in str(error.value) and "services[0].tier" in str(error.value)


def test_a_district_in_two_catchments_is_refused(config_dir):
    _edit(config_dir / "teams.toml", '["N8", "N10"', '["N19", "N8", "N10"')
    with pytest.raises(ConfigError, match="district N19 is in both whittington and haringey"):
        load_domain_config(config_dir)


def test_broken_toml_is_reported_with_the_file(config_dir):
    (config_dir / "teams.toml").write_text("[[teams]\n")
    with pytest.raises(ConfigError, match="teams.toml: not valid TOML"):
        load_domain_config(config_dir)


def test_missing_file_is_reported(config_dir):
    (config_dir / "policy.toml").unlink()
    with pytest.raises(ConfigError, match="policy.toml: file is missing"):
        load_domain_config(config_dir)


def test_a_course_without_weeks_is_refused(config_dir):
    _edit(config_dir / "catalogue.toml", "weeks = 8\n", "")
    with pytest.raises(ConfigError, match="a course needs 'weeks'"):
        load_domain_config(config_dir)


def test_production_refuses_to_start_without_secrets():
    with pytest.raises(ConfigError) as error:
        settings_from_environment({"PORTAL_ENV": "production"})
    # PUBLIC_BASE_URL too: texted links are built on it, and production answers only its host.
    for name in ("SECRET_KEY", "DATABASE_URL", "PUBLIC_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                 "TWILIO_FROM"):
        assert name in str(error.value)


def test_production_settings_are_secure(tmp_path):
    settings = settings_from_environment({
        "PORTAL_ENV": "production", "SECRET_KEY": "k" * 40, "DATABASE_URL": "postgresql+psycopg://db/portal",
        "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "NHS Appts",
        "PUBLIC_BASE_URL": "https://portal.example.nhs.uk", "PORTAL_INSTANCE_DIR": str(tmp_path),
    })
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["DEV_INBOX"] is False
    assert settings["SMS_BACKEND"] == "twilio"


PRODUCTION_ENV = {
    "PORTAL_ENV": "production", "SECRET_KEY": "k" * 40, "DATABASE_URL": "postgresql+psycopg://db/portal",
    "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "NHS Appts",
    "PUBLIC_BASE_URL": "https://portal.example.nhs.uk",
}


def test_production_answers_only_the_public_host_and_any_extra_ones(tmp_path):
    env = {**PRODUCTION_ENV, "PORTAL_INSTANCE_DIR": str(tmp_path), "PUBLIC_BASE_URL": "https://Portal.Example.nhs.uk"}
    assert settings_from_environment(env)["TRUSTED_HOSTS"] == ["portal.example.nhs.uk"]
    env["EXTRA_HOSTS"] = " 10.0.1.23 , portal-internal.svc,, portal.example.nhs.uk"
    assert settings_from_environment(env)["TRUSTED_HOSTS"] == [
        "portal.example.nhs.uk", "10.0.1.23", "portal-internal.svc"]


def test_development_answers_any_host_unless_extra_hosts_are_given(tmp_path):
    env = {"PORTAL_INSTANCE_DIR": str(tmp_path)}
    assert settings_from_environment(env)["TRUSTED_HOSTS"] is None
    env["EXTRA_HOSTS"] = "localhost"
    assert settings_from_environment(env)["TRUSTED_HOSTS"] == ["127.0.0.1", "localhost"]


@pytest.mark.parametrize("extra", ["https://portal.example.nhs.uk", "portal.example.nhs.uk:443", ".example.nhs.uk",
                                   "portal.example.nhs.uk/healthz", "*"])
def test_extra_hosts_are_host_names_only(tmp_path, extra):
    with pytest.raises(ConfigError, match="EXTRA_HOSTS must be host names"):
        settings_from_environment({**PRODUCTION_ENV, "PORTAL_INSTANCE_DIR": str(tmp_path), "EXTRA_HOSTS": extra})


@pytest.mark.parametrize("public", ["portal.example.nhs.uk", "https://", "https://[::1"])
def test_production_needs_a_public_base_url_with_a_host(tmp_path, public):
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL must be a full address"):
        settings_from_environment({**PRODUCTION_ENV, "PORTAL_INSTANCE_DIR": str(tmp_path), "PUBLIC_BASE_URL": public})


def test_development_defaults_to_sqlite_and_console(tmp_path):
    settings = settings_from_environment({"PORTAL_INSTANCE_DIR": str(tmp_path)})
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'portal.db'}"
    assert settings["SMS_BACKEND"] == "console"
    # The generated development secret survives a restart.
    assert settings_from_environment({"PORTAL_INSTANCE_DIR": str(tmp_path)})["SECRET_KEY"] == settings["SECRET_KEY"]


def test_proxy_hops_trust_the_forwarded_scheme_and_address(app, database_url):
    from portal import create_app

    proxied = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x", "PROXY_HOPS": 1, "TESTING": True})
    seen = {}

    @proxied.get("/_probe")
    def probe():
        from flask import request

        seen.update(scheme=request.scheme, remote=request.remote_addr)
        return "ok"

    proxied.test_client().get("/_probe", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert seen == {"scheme": "https", "remote": "203.0.113.9"}
    proxied.extensions["db"].dispose()
    assert app.config["PROXY_HOPS"] == 0  # the default trusts no forwarded header


def test_proxy_hops_must_be_a_small_whole_number():
    from portal.settings import ConfigError, settings_from_environment

    with pytest.raises(ConfigError, match="PROXY_HOPS"):
        settings_from_environment({"PROXY_HOPS": "lots"})
