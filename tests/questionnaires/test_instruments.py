"""Scoring by the published rules, against worked examples, with the severity bands at every boundary."""

from __future__ import annotations

import pytest

from portal.questionnaires import instruments as measures
from portal.questionnaires.instruments import GAD7, PAIN_INTENSITY, PAIN_INTERFERENCE, PGIC, PHQ9, score
from portal.questionnaires.services import classify_change


def phq9(*values: int, difficulty: int | None = None) -> dict[str, int]:
    answers = {f"phq9_{n}": v for n, v in enumerate(values, start=1)}
    if difficulty is not None:
        answers["phq9_difficulty"] = difficulty
    return answers


def gad7(*values: int) -> dict[str, int]:
    return {f"gad7_{n}": v for n, v in enumerate(values, start=1)}


# Worked examples.

def test_phq9_worked_example_scores_11_moderate():
    total = score(PHQ9, phq9(1, 2, 1, 0, 3, 2, 1, 0, 1))
    assert total == 11
    assert PHQ9.band_for(total) == "Moderate"


def test_phq9_all_nearly_every_day_is_27_severe():
    total = score(PHQ9, phq9(*[3] * 9))
    assert (total, PHQ9.band_for(total)) == (27, "Severe")


def test_phq9_all_not_at_all_is_0_minimal():
    total = score(PHQ9, phq9(*[0] * 9))
    assert (total, PHQ9.band_for(total)) == (0, "Minimal")


def test_the_phq9_difficulty_question_is_asked_but_never_scored():
    difficulty = PHQ9.item("phq9_difficulty")
    assert not difficulty.scored and not difficulty.required
    assert score(PHQ9, phq9(1, 1, 1, 1, 1, 1, 1, 1, 1, difficulty=3)) == 9
    assert score(PHQ9, phq9(1, 1, 1, 1, 1, 1, 1, 1, 1)) == 9


def test_gad7_worked_examples():
    assert (score(GAD7, gad7(2, 1, 2, 1, 0, 1, 0)), GAD7.band_for(7)) == (7, "Mild")
    assert score(GAD7, gad7(3, 3, 3, 3, 3, 3, 3)) == 21
    assert GAD7.band_for(21) == "Severe"
    assert score(GAD7, gad7(2, 2, 2, 2, 2, 2, 0)) == 12
    assert GAD7.band_for(12) == "Moderate"


def test_pain_intensity_is_the_rating_itself():
    assert score(PAIN_INTENSITY, {"pain_average": 7}) == 7


def test_pain_interference_is_the_mean_of_its_four_items_kept_exactly():
    answers = {"interference_activity": 6, "interference_sleep": 5, "interference_mood": 5, "interference_work": 5}
    assert score(PAIN_INTERFERENCE, answers) == 5.25
    assert score(PAIN_INTERFERENCE, dict.fromkeys(answers, 10)) == 10


def test_pgic_scores_its_one_answer_and_bands_it_in_words():
    assert score(PGIC, {"pgic": 2}) == 2
    assert PGIC.band_for(2) == "Much better"


def test_a_half_filled_measure_cannot_be_scored():
    with pytest.raises(ValueError, match="phq9_9 is not answered"):
        score(PHQ9, phq9(1, 1, 1, 1, 1, 1, 1, 1))


def test_an_answer_that_is_not_an_option_cannot_be_scored():
    with pytest.raises(ValueError, match="no option"):
        score(GAD7, gad7(1, 1, 1, 1, 1, 1, 4))


# Bands at every boundary.

@pytest.mark.parametrize(("total", "band"), [
    (0, "Minimal"), (4, "Minimal"), (5, "Mild"), (9, "Mild"), (10, "Moderate"), (14, "Moderate"),
    (15, "Moderately severe"), (19, "Moderately severe"), (20, "Severe"), (27, "Severe"),
])
def test_phq9_bands(total, band):
    assert PHQ9.band_for(total) == band


@pytest.mark.parametrize(("total", "band"), [
    (0, "Minimal"), (4, "Minimal"), (5, "Mild"), (9, "Mild"), (10, "Moderate"), (14, "Moderate"),
    (15, "Severe"), (21, "Severe"),
])
def test_gad7_bands(total, band):
    assert GAD7.band_for(total) == band


@pytest.mark.parametrize("instrument", [PHQ9, GAD7])
def test_bands_cover_every_possible_score_once(instrument):
    low, high = instrument.score_range
    for total in range(int(low), int(high) + 1):
        assert sum(b.low <= total <= b.high for b in instrument.bands) == 1, total


def test_every_possible_phq9_total_gets_its_band_from_real_answers():
    for total in range(28):
        values = [3] * (total // 3) + ([total % 3] if total % 3 else [])
        values += [0] * (9 - len(values))
        assert score(PHQ9, phq9(*values)) == total


# Change from baseline: published reliable change only where it exists.

@pytest.mark.parametrize(("baseline", "later", "verdict"), [
    (18, 12, "Reliable improvement"),  # 6 points: the IAPT threshold
    (18, 13, None),  # 5 points: not reliable
    (8, 14, "Reliable deterioration"),
    (8, 13, None),
])
def test_phq9_reliable_change_is_six_points(baseline, later, verdict):
    change = classify_change(PHQ9, baseline, later)
    assert change.verdict == verdict
    assert change.reliable
    assert change.points == later - baseline


@pytest.mark.parametrize(("baseline", "later", "verdict"), [
    (15, 11, "Reliable improvement"), (15, 12, None), (5, 9, "Reliable deterioration"), (5, 8, None),
])
def test_gad7_reliable_change_is_four_points(baseline, later, verdict):
    assert classify_change(GAD7, baseline, later).verdict == verdict


@pytest.mark.parametrize(("baseline", "later", "verdict"), [
    (8, 6, "Clinically important improvement"),  # 2 points
    (9, 8, None),  # 1 point, 11%
    (3, 2, "Clinically important improvement"),  # 1 point but 33% of the start
    (5, 7, "Clinically important deterioration"),
    (1, 2, None),  # a rise of 1 point: the 30% rule is for improvement only
    (1, 3, "Clinically important deterioration"),
])
def test_pain_intensity_has_a_clinically_important_marker_never_called_reliable(baseline, later, verdict):
    change = classify_change(PAIN_INTENSITY, baseline, later)
    assert change.verdict == verdict
    assert not change.reliable
    assert "not a reliable-change threshold" in PAIN_INTENSITY.change.source.lower()


def test_pain_interference_says_no_threshold_is_published():
    assert PAIN_INTERFERENCE.change is None
    assert "no published" in PAIN_INTERFERENCE.no_change_rule.lower()
    assert classify_change(PAIN_INTERFERENCE, 7, 2).verdict is None


# Licences and wording.

def test_licensed_scales_are_disabled_entries_with_no_item_text():
    licensed = [i for i in measures.ALL if i.licensed]
    assert {i.key for i in licensed} == {"bpi", "peg", "pseq"}
    for instrument in licensed:
        assert instrument.items == () and instrument.title == "" and instrument.intro == ""


@pytest.mark.parametrize("occasion", ["baseline", "end", "follow_up"])
def test_licensed_scales_are_never_asked_even_when_turned_on_without_wording(occasion):
    for enabled in (False, True):
        assert not any(i.licensed for i in measures.instruments_for(occasion, licensed_enabled=enabled))


def test_turning_on_licensed_scales_without_their_wording_is_refused():
    measures.check_licensed_scales(False)
    with pytest.raises(measures.LicensedScaleWithoutText, match="BPI"):
        measures.check_licensed_scales(True)


def test_the_measures_asked_at_each_occasion():
    keys = {o: [i.key for i in measures.instruments_for(o, licensed_enabled=False)] for o in measures.OCCASIONS}
    assert keys["baseline"] == ["pain_intensity", "pain_interference", "phq9", "gad7"]
    assert keys["end"] == keys["follow_up"] == ["pain_intensity", "pain_interference", "phq9", "gad7", "pgic"]


def test_phq9_and_gad7_are_written_out_in_full():
    assert [i.key for i in PHQ9.scored_items] == [f"phq9_{n}" for n in range(1, 10)]
    assert [i.key for i in GAD7.items] == [f"gad7_{n}" for n in range(1, 8)]
    assert PHQ9.item("phq9_9").text == (
        "Thoughts that you would be better off dead or of hurting yourself in some way")
    assert PHQ9.safety_item == "phq9_9"
    for item in PHQ9.scored_items + GAD7.items:
        assert [(o.value, o.label) for o in item.options] == [
            (0, "Not at all"), (1, "Several days"), (2, "More than half the days"), (3, "Nearly every day")]


def test_the_pain_items_do_not_use_the_brief_pain_inventorys_wording():
    # BPI phrases the service has no licence for; our own items must not use them.
    licensed_phrases = ["pain at its worst", "pain at its least", "relations with other people", "enjoyment of life",
                        "walking ability", "normal work", "interfered with your"]
    for instrument in (PAIN_INTENSITY, PAIN_INTERFERENCE):
        words = " ".join([instrument.intro] + [i.text for i in instrument.items]).lower()
        assert [p for p in licensed_phrases if p in words] == []


def test_the_portal_will_not_start_with_licensed_scales_turned_on_without_wording(tmp_path):
    import shutil

    from portal.settings import DEFAULT_CONFIG_DIR, ConfigError, load_domain_config
    from tests.fixtures.apps import separate_app

    for name in ("catalogue", "teams", "policy"):
        shutil.copy(DEFAULT_CONFIG_DIR / f"{name}.toml", tmp_path / f"{name}.toml")
    policy = tmp_path / "policy.toml"
    policy.write_text(policy.read_text().replace("licensed_scales_enabled = false", "licensed_scales_enabled = true"))
    assert load_domain_config(tmp_path).policy.questionnaires.licensed_scales_enabled
    with pytest.raises(ConfigError, match="licensed_scales_enabled is true.*no item text"), separate_app(
        {"PORTAL_CONFIG_DIR": str(tmp_path), "DATABASE_URL": "sqlite://", "SECRET_KEY": "x"}
    ):
        pass


def test_the_questionnaire_settings_default_to_off_and_three_months():
    from portal.settings import load_domain_config

    settings = load_domain_config().policy.questionnaires
    assert (settings.licensed_scales_enabled, settings.follow_up_months) == (False, 3)
