"""The outcome measures as data: item wording, answer options, scoring rules, bands and change thresholds.

Free to use, and written out here:
- PHQ-9 and GAD-7 (Drs Spitzer, Williams, Kroenke and colleagues, with an educational grant from Pfizer Inc.;
  no permission is needed to reproduce, translate, display or distribute them). Wording as published.
- A 0-10 pain intensity rating and four pain interference items, written for this service (0-10 numeric
  ratings are free; these are deliberately not the Brief Pain Inventory's items).
- A patient global impression of change, in the service's own words on the classic 7-point scale.

Licensed scales (BPI, the PEG built from it, PSEQ) are listed only as disabled entries with no item text: the
service holds no licence, so their wording must not appear in this code. See ``licensed_scales_enabled``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Scoring(enum.StrEnum):
    SUM = "sum"  # total of the scored items
    MEAN = "mean"  # mean of the scored items (four 0-10 items: a multiple of 0.25, kept exactly)
    SINGLE = "single"  # the one item's value


@dataclass(frozen=True)
class Option:
    value: int
    label: str


@dataclass(frozen=True)
class Item:
    key: str
    text: str
    options: tuple[Option, ...]
    # Said next to the question when it is left out of a submitted questionnaire.
    error: str
    scored: bool = True
    required: bool = True


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class ChangeRule:
    """When a change from baseline counts, and what to call it.

    ``reliable`` is True only for a published reliable-change threshold; otherwise it is a clinically
    important change marker, labelled as such (and never as reliable change).
    """

    points: float
    reliable: bool
    name: str
    source: str
    # A fall of at least this fraction of the baseline also counts (pain intensity: 30%).
    fraction: float | None = None
    lower_is_better: bool = True


@dataclass(frozen=True)
class Instrument:
    key: str
    name: str  # what staff call it
    title: str  # the patient's page heading
    intro: str  # the question stem, read before the items
    items: tuple[Item, ...]
    scoring: Scoring
    score_range: tuple[float, float]
    bands: tuple[Band, ...] = ()
    change: ChangeRule | None = None
    # Why there is no change rule, for staff (shown instead of a flag).
    no_change_rule: str = ""
    occasions: tuple[str, ...] = ("baseline", "end", "follow_up")
    licensed: bool = False
    licence_note: str = ""
    # An item whose answer above the lowest option raises an urgent flag (PHQ-9 item 9).
    safety_item: str | None = None

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.scored)

    def item(self, key: str) -> Item:
        return next(i for i in self.items if i.key == key)

    def band_for(self, score: float) -> str | None:
        return next((b.label for b in self.bands if b.low <= score <= b.high), None)


OCCASIONS = {
    "baseline": "Start of care",
    "end": "End of course",
    "follow_up": "Follow-up",
}

_FREQUENCY = (
    Option(0, "Not at all"),
    Option(1, "Several days"),
    Option(2, "More than half the days"),
    Option(3, "Nearly every day"),
)

_DIFFICULTY = (
    Option(0, "Not difficult at all"),
    Option(1, "Somewhat difficult"),
    Option(2, "Very difficult"),
    Option(3, "Extremely difficult"),
)


def _frequency_item(key: str, text: str, about: str) -> Item:
    return Item(key=key, text=text, options=_FREQUENCY, error=f"Select how often you have been bothered by {about}")


PHQ9 = Instrument(
    key="phq9",
    name="PHQ-9 (depression)",
    title="How you have been feeling",
    intro="Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    items=(
        _frequency_item("phq9_1", "Little interest or pleasure in doing things",
                        "little interest or pleasure in doing things"),
        _frequency_item("phq9_2", "Feeling down, depressed, or hopeless", "feeling down, depressed, or hopeless"),
        _frequency_item("phq9_3", "Trouble falling or staying asleep, or sleeping too much",
                        "trouble falling or staying asleep, or sleeping too much"),
        _frequency_item("phq9_4", "Feeling tired or having little energy", "feeling tired or having little energy"),
        _frequency_item("phq9_5", "Poor appetite or overeating", "poor appetite or overeating"),
        _frequency_item("phq9_6", "Feeling bad about yourself \u2014 or that you are a failure or have let yourself "
                        "or your family down", "feeling bad about yourself"),
        _frequency_item("phq9_7", "Trouble concentrating on things, such as reading the newspaper or watching "
                        "television", "trouble concentrating on things"),
        _frequency_item("phq9_8", "Moving or speaking so slowly that other people could have noticed? Or the "
                        "opposite \u2014 being so fidgety or restless that you have been moving around a lot more "
                        "than usual", "moving or speaking slowly, or being fidgety or restless"),
        _frequency_item("phq9_9", "Thoughts that you would be better off dead or of hurting yourself in some way",
                        "thoughts that you would be better off dead or of hurting yourself"),
        # Asked after the nine items and not part of the score (PHQ-9 instructions).
        Item(key="phq9_difficulty",
             text="If you checked off any problems, how difficult have these problems made it for you to do your "
                  "work, take care of things at home, or get along with other people?",
             options=_DIFFICULTY, error="Select how difficult these problems have made things for you",
             scored=False, required=False),
    ),
    scoring=Scoring.SUM,
    score_range=(0, 27),
    bands=(
        Band(0, 4, "Minimal"),
        Band(5, 9, "Mild"),
        Band(10, 14, "Moderate"),
        Band(15, 19, "Moderately severe"),
        Band(20, 27, "Severe"),
    ),
    change=ChangeRule(points=6, reliable=True, name="Reliable change",
                      source="IAPT (NHS Talking Therapies) reliable change index for PHQ-9: 6 points or more"),
    safety_item="phq9_9",
)

GAD7 = Instrument(
    key="gad7",
    name="GAD-7 (anxiety)",
    title="Worry and anxiety",
    intro="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=(
        _frequency_item("gad7_1", "Feeling nervous, anxious, or on edge", "feeling nervous, anxious, or on edge"),
        _frequency_item("gad7_2", "Not being able to stop or control worrying",
                        "not being able to stop or control worrying"),
        _frequency_item("gad7_3", "Worrying too much about different things",
                        "worrying too much about different things"),
        _frequency_item("gad7_4", "Trouble relaxing", "trouble relaxing"),
        _frequency_item("gad7_5", "Being so restless that it is hard to sit still",
                        "being so restless that it is hard to sit still"),
        _frequency_item("gad7_6", "Becoming easily annoyed or irritable", "becoming easily annoyed or irritable"),
        _frequency_item("gad7_7", "Feeling afraid, as if something awful might happen",
                        "feeling afraid, as if something awful might happen"),
    ),
    scoring=Scoring.SUM,
    score_range=(0, 21),
    bands=(
        Band(0, 4, "Minimal"),
        Band(5, 9, "Mild"),
        Band(10, 14, "Moderate"),
        Band(15, 21, "Severe"),
    ),
    change=ChangeRule(points=4, reliable=True, name="Reliable change",
                      source="IAPT (NHS Talking Therapies) reliable change index for GAD-7: 4 points or more"),
)


def _zero_to_ten(low: str, high: str) -> tuple[Option, ...]:
    return tuple(Option(n, f"{n} \u2013 {low}" if n == 0 else f"{n} \u2013 {high}" if n == 10 else str(n))
                 for n in range(11))


PAIN_INTENSITY = Instrument(
    key="pain_intensity",
    name="Pain intensity (0 to 10)",
    title="Your pain",
    intro="Choose the number that best describes your pain. 0 means no pain at all and 10 means the worst pain "
          "you can imagine.",
    items=(
        Item(key="pain_average", text="Thinking about the last 7 days, how bad has your pain been on average?",
             options=_zero_to_ten("no pain", "the worst pain you can imagine"),
             error="Select how bad your pain has been on average"),
    ),
    scoring=Scoring.SINGLE,
    score_range=(0, 10),
    # Not a reliable-change threshold: none is published for a single 0-10 rating used like this. IMMPACT's
    # guide to a clinically important change in chronic pain intensity (Farrar et al. 2001; Dworkin et al.
    # 2008) is about 2 points or about 30%.
    change=ChangeRule(points=2, fraction=0.3, reliable=False, name="Clinically important change",
                      source="IMMPACT guide for 0 to 10 pain ratings: 2 points or 30% of the starting score. "
                             "Not a reliable-change threshold: none is published for this rating"),
)

_INTERFERENCE = _zero_to_ten("not at all", "completely")


def _interference_item(key: str, what: str) -> Item:
    return Item(key=key, text=f"Over the last 7 days, how much has pain got in the way of {what}?",
                options=_INTERFERENCE, error=f"Select how much pain has got in the way of {what}")


PAIN_INTERFERENCE = Instrument(
    key="pain_interference",
    name="Pain interference (0 to 10, mean of 4 items)",
    title="How pain affects your life",
    intro="For each question, choose a number. 0 means pain has not got in the way at all and 10 means it "
          "has got in the way completely.",
    items=(
        _interference_item("interference_activity", "your day-to-day activities"),
        _interference_item("interference_sleep", "your sleep"),
        _interference_item("interference_mood", "your mood"),
        _interference_item("interference_work", "work, study or jobs around the home"),
    ),
    scoring=Scoring.MEAN,
    score_range=(0, 10),
    no_change_rule="No published reliable-change threshold: these are the service's own items",
)

PGIC = Instrument(
    key="pgic",
    name="Global impression of change",
    title="How things have changed",
    intro="Think about your pain, what you can do, your mood and your life as a whole.",
    items=(
        Item(key="pgic", text="Since you started with the service, how would you describe any change?",
             options=(
                 Option(1, "Very much better"),
                 Option(2, "Much better"),
                 Option(3, "A little better"),
                 Option(4, "No change"),
                 Option(5, "A little worse"),
                 Option(6, "Much worse"),
                 Option(7, "Very much worse"),
             ),
             error="Select how things have changed since you started with the service"),
    ),
    scoring=Scoring.SINGLE,
    score_range=(1, 7),
    # "Much better" or "very much better" is the usual mark of a meaningful improvement (IMMPACT).
    bands=(
        Band(1, 1, "Very much better"), Band(2, 2, "Much better"), Band(3, 3, "A little better"),
        Band(4, 4, "No change"), Band(5, 5, "A little worse"), Band(6, 6, "Much worse"),
        Band(7, 7, "Very much worse"),
    ),
    no_change_rule="Asked at the end and at follow-up only: it is itself a rating of change",
    occasions=("end", "follow_up"),
)

_NO_LICENCE = "Licensed scale: the service holds no licence, so no item text is included"

# Disabled entries. Turning on ``licensed_scales_enabled`` without adding licensed item text here stops the
# portal at start-up (see check_licensed_scales), so an empty questionnaire is never shown.
BPI = Instrument(key="bpi", name="Brief Pain Inventory (BPI)", title="", intro="", items=(), scoring=Scoring.MEAN,
                 score_range=(0, 10), licensed=True, licence_note=_NO_LICENCE)
PEG = Instrument(key="peg", name="PEG (3 items from the BPI)", title="", intro="", items=(), scoring=Scoring.MEAN,
                 score_range=(0, 10), licensed=True, licence_note=_NO_LICENCE)
PSEQ = Instrument(key="pseq", name="Pain Self-Efficacy Questionnaire (PSEQ)", title="", intro="", items=(),
                  scoring=Scoring.SUM, score_range=(0, 60), licensed=True, licence_note=_NO_LICENCE)

# In the order a patient meets them: pain first, then mood, then the global impression.
ALL = (PAIN_INTENSITY, PAIN_INTERFERENCE, PHQ9, GAD7, PGIC, BPI, PEG, PSEQ)
BY_KEY = {instrument.key: instrument for instrument in ALL}


class LicensedScaleWithoutText(ValueError):
    pass


def check_licensed_scales(enabled: bool) -> None:
    """Refuse to turn on licensed scales that have no item text (we hold no licence, so none is included)."""
    if not enabled:
        return
    empty = [i.name for i in ALL if i.licensed and not i.items]
    if empty:
        raise LicensedScaleWithoutText(
            "questionnaires.licensed_scales_enabled is true, but these licensed scales have no item text: "
            + ", ".join(empty) + ". Add the licensed wording first, under a licence."
        )


def instruments_for(occasion: str, *, licensed_enabled: bool) -> tuple[Instrument, ...]:
    """The measures asked at an occasion, in order. Licensed scales only when enabled (and given wording)."""
    return tuple(
        i for i in ALL
        if occasion in i.occasions and i.items and (licensed_enabled or not i.licensed)
    )


def score(instrument: Instrument, answers: dict[str, int]) -> float:
    """The score by the published rule; every scored item must be answered (drafts are never scored)."""
    values = []
    for item in instrument.scored_items:
        value = answers.get(item.key)
        if value is None:
            raise ValueError(f"{instrument.key}: {item.key} is not answered")
        if value not in {o.value for o in item.options}:
            raise ValueError(f"{instrument.key}: {item.key} has no option {value!r}")
        values.append(value)
    if instrument.scoring is Scoring.MEAN:
        return sum(values) / len(values)
    return float(sum(values))
