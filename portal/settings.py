"""Configuration: secrets from the environment, domain data from ``config/*.toml``.

Every TOML file is validated at start-up. An unknown key or a bad value stops the portal with a
message naming the file and the key, so a typo in a catchment never silently routes patients.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "config"


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Key = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")]
District = Annotated[str, Field(pattern=r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")]


class Service(_Strict):
    key: Key
    tier: Literal[1, 2]
    name: Annotated[str, Field(min_length=3, max_length=80)]
    summary: Annotated[str, Field(min_length=3, max_length=300)]
    kind: Literal["course", "appointment"]
    weeks: Annotated[int, Field(ge=1, le=26)] | None = None
    self_bookable: bool
    team_scoped: bool
    sms_label: Annotated[str, Field(min_length=3, max_length=20)]

    @model_validator(mode="after")
    def _weeks_for_courses(self) -> Service:
        if self.kind == "course" and self.weeks is None:
            raise ValueError("a course needs 'weeks'")
        if self.kind == "appointment" and self.weeks is not None:
            raise ValueError("'weeks' is only for courses")
        if self.team_scoped and self.tier != 2:
            raise ValueError("only Tier 2 services are team-scoped")
        return self


class Catalogue(_Strict):
    services: Annotated[list[Service], Field(min_length=1)]

    @field_validator("services")
    @classmethod
    def _unique_keys(cls, services: list[Service]) -> list[Service]:
        keys = [s.key for s in services]
        if len(keys) != len(set(keys)):
            raise ValueError("service keys must be unique")
        return services

    def get(self, key: str) -> Service | None:
        return next((s for s in self.services if s.key == key), None)

    def for_tier(self, tier: int) -> list[Service]:
        return [s for s in self.services if s.tier == tier]

    def course_for_tier(self, tier: int) -> Service | None:
        return next((s for s in self.for_tier(tier) if s.kind == "course"), None)


class Team(_Strict):
    key: Key
    name: Annotated[str, Field(min_length=3, max_length=80)]
    short_name: Annotated[str, Field(min_length=2, max_length=20)]
    catchment: str
    postcode_districts: list[District]


class ServiceArea(_Strict):
    postcode_districts: list[District]


class Teams(_Strict):
    teams: Annotated[list[Team], Field(min_length=1)]
    service_area: ServiceArea

    @model_validator(mode="after")
    def _no_district_in_two_catchments(self) -> Teams:
        seen: dict[str, str] = {}
        for team in self.teams:
            for district in team.postcode_districts:
                if district in seen:
                    raise ValueError(f"district {district} is in both {seen[district]} and {team.key}")
                seen[district] = team.key
        return self

    def get(self, key: str | None) -> Team | None:
        return next((t for t in self.teams if t.key == key), None)

    def team_for_district(self, district: str) -> Team | None:
        return next((t for t in self.teams if district in t.postcode_districts), None)


def _parse_hhmm(value: str) -> dt.time:
    if not re.fullmatch(r"[0-2][0-9]:[0-5][0-9]", value):
        raise ValueError("use 24-hour HH:MM")
    return dt.time.fromisoformat(value)


class ServiceInfo(_Strict):
    name: str
    phone: Annotated[str, Field(pattern=r"^0[0-9 ]{9,13}$")]
    timezone: Literal["Europe/London"]


class BookingPolicy(_Strict):
    cancel_cutoff_hours: Annotated[int, Field(ge=0, le=336)]
    max_future_appointments_per_service: Annotated[int, Field(ge=1, le=10)]
    course_booking_closes_hours: Annotated[int, Field(ge=0, le=336)]
    # How long a freed seat is held for the next patient on the waiting list.
    offer_hold_hours: Annotated[int, Field(ge=1, le=336)]
    # How far ahead 1:1 slots are generated from availability templates, and shown to patients.
    slot_weeks_ahead: Annotated[int, Field(ge=1, le=26)]
    slot_booking_weeks: Annotated[int, Field(ge=1, le=26)]


class InvitationPolicy(_Strict):
    link_valid_days: Annotated[int, Field(ge=1, le=30)]
    # Reception's queue of invitations not yet used lists a link this many days old even before it expires.
    chase_after_days: Annotated[int, Field(ge=1, le=30)] = 3


class ReminderPolicy(_Strict):
    send_window_start: str
    send_window_end: str
    appointment_days_before: list[Annotated[int, Field(ge=1, le=28)]]
    course_first_session_days_before: Annotated[int, Field(ge=1, le=28)]
    course_each_session_days_before: Annotated[int, Field(ge=1, le=28)]

    @field_validator("send_window_start", "send_window_end")
    @classmethod
    def _time(cls, value: str) -> str:
        _parse_hhmm(value)
        return value

    @property
    def window(self) -> tuple[dt.time, dt.time]:
        return _parse_hhmm(self.send_window_start), _parse_hhmm(self.send_window_end)


class SmsPolicy(_Strict):
    validity_period_seconds: Annotated[int, Field(ge=60, le=36000)]
    max_attempts: Annotated[int, Field(ge=1, le=20)]
    # Texts per second the dispatcher sends at most, per scheduler process (absent: no limit).
    max_per_second: Annotated[float, Field(gt=0, le=1000)] | None = None
    # A text left in 'sending' this long is swept to 'unknown' (messaging.sweep): far above the longest a
    # batch can take (20 texts that each time out after 10 s is 200 s), so a live send is never swept.
    stuck_after_seconds: Annotated[int, Field(ge=300, le=86400)] = 900
    # What one SMS segment costs, in pence (the texts report multiplies the segments billed by it).
    price_per_segment_pence: Annotated[float, Field(ge=0, le=100)] = 4.0


class QuestionnairePolicy(_Strict):
    # BPI, PEG and PSEQ need a licence, which the service does not hold: their entries carry no item text,
    # and turning this on before licensed wording is added stops the portal at start-up.
    licensed_scales_enabled: bool = False
    # The follow-up questionnaires fall due this many calendar months after the end of the course (or after
    # the baseline, for patients not in a course).
    follow_up_months: Annotated[int, Field(ge=1, le=24)] = 3


class AttendancePolicy(_Strict):
    # Marks may be corrected for this many days after a session or appointment; then the register is read-only.
    correction_days: Annotated[int, Field(ge=0, le=60)] = 7
    # A local rule, not a national one: this many did-not-attend marks in one cohort open a review.
    course_dna_threshold: Annotated[int, Field(ge=1, le=20)] = 2
    # ...and this many in a row, for the 1:1 appointments of one service.
    appointment_dna_in_a_row: Annotated[int, Field(ge=1, le=20)] = 2


class Policy(_Strict):
    service: ServiceInfo
    booking: BookingPolicy
    invitations: InvitationPolicy
    reminders: ReminderPolicy
    sms: SmsPolicy
    questionnaires: QuestionnairePolicy = QuestionnairePolicy()
    attendance: AttendancePolicy = AttendancePolicy()


class DomainConfig(BaseModel):
    model_config = ConfigDict(frozen=True)
    catalogue: Catalogue
    teams: Teams
    policy: Policy


_FILES: dict[str, type[_Strict]] = {"catalogue": Catalogue, "teams": Teams, "policy": Policy}


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_domain_config(config_dir: Path | str = DEFAULT_CONFIG_DIR) -> DomainConfig:
    """Read and validate every file in ``config/``; raise ConfigError naming the file and key."""
    config_dir = Path(config_dir)
    parts = {}
    for name, model in _FILES.items():
        path = config_dir / f"{name}.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file is missing") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            parts[name] = model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_location(err['loc'])}: "
                + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"])
                for err in exc.errors()
            )
            raise ConfigError(f"{path}: {problems}") from None
    return DomainConfig(**parts)


def settings_from_environment(environ: dict[str, str] | None = None) -> dict[str, object]:
    """Flask settings from the environment. Production refuses to start without its secrets."""
    env = dict(os.environ if environ is None else environ)
    production = env.get("PORTAL_ENV", "development") == "production"
    missing = [name for name in ("SECRET_KEY", "DATABASE_URL", "PUBLIC_BASE_URL") if production and not env.get(name)]
    if production and env.get("SMS_BACKEND", "twilio") == "twilio":
        missing += [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM") if not env.get(n)]
    if missing:
        raise ConfigError("production start refused: set " + ", ".join(missing) + " in the environment")
    instance = Path(env.get("PORTAL_INSTANCE_DIR", REPO_ROOT / "instance"))
    public_base_url = env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    return {
        "PRODUCTION": production,
        "SECRET_KEY": env.get("SECRET_KEY") or _development_secret(instance),
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'portal.db'}",
        "PORTAL_CONFIG_DIR": env.get("PORTAL_CONFIG_DIR", str(DEFAULT_CONFIG_DIR)),
        "PUBLIC_BASE_URL": public_base_url,
        # The Host names requests may carry (Flask answers any other with 400); None answers every one.
        "TRUSTED_HOSTS": _trusted_hosts(env, production, public_base_url),
        "SMS_BACKEND": env.get("SMS_BACKEND", "twilio" if production else "console"),
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_FROM": env.get("TWILIO_FROM", ""),
        "TWILIO_API_BASE": env.get("TWILIO_API_BASE", "https://api.twilio.com"),
        # Where Twilio posts delivery receipts, if not PUBLIC_BASE_URL + /webhooks/twilio/status.
        "SMS_STATUS_CALLBACK_URL": env.get("SMS_STATUS_CALLBACK_URL", ""),
        "REDIS_URL": env.get("REDIS_URL", ""),
        # How many reverse proxies (load balancer, nginx) sit in front and set X-Forwarded-For/-Proto: 0 trusts none.
        "PROXY_HOPS": _whole_number(env, "PROXY_HOPS", 0),
        "DEV_INBOX": not production,
        "SESSION_COOKIE_SECURE": production,
    }


# A host name or IPv4 address: letters, digits and hyphens between dots; no scheme, port, path or wildcard.
_HOST_NAME = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")


def _trusted_hosts(env: dict[str, str], production: bool, public_base_url: str) -> list[str] | None:
    """In production, only the host of PUBLIC_BASE_URL and those in EXTRA_HOSTS (comma-separated: say, the address
    a load balancer's health check uses), so a request naming another host (which links built from the request
    would then point at) gets 400. Development and tests answer any host unless EXTRA_HOSTS is given."""
    extra = [name.strip().lower() for name in env.get("EXTRA_HOSTS", "").split(",") if name.strip()]
    for name in extra:
        if not _HOST_NAME.fullmatch(name):
            raise ConfigError(f"EXTRA_HOSTS must be host names separated by commas, with no scheme or port, "
                              f"not {name!r}")
    if not production and not extra:
        return None
    try:
        public_host = urlsplit(public_base_url).hostname
    except ValueError:
        public_host = None
    if not public_host:
        raise ConfigError(f"PUBLIC_BASE_URL must be a full address such as https://portal.example.nhs.uk, "
                          f"not {public_base_url!r}")
    return list(dict.fromkeys([public_host, *extra]))


def _whole_number(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) > 5:
        raise ConfigError(f"{name} must be a whole number from 0 to 5, not {value!r}")
    return int(value)


def _development_secret(instance: Path) -> str:
    # A development secret that survives restarts, so `make run` twice keeps people signed in.
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()
