"""The pack's config sections: defaults, and a bad value names the key to fix."""

from __future__ import annotations

import pytest

from hybrid_ai.settings import RiskLevel, SettingsError, load_settings


def test_settings_defaults_and_config_values():
    assert load_settings({}).risk_level is RiskLevel.MODERATE
    s = load_settings({"hybrid_ai": {"risk_level": "aggressive",
                                     "limits": {"max_stake_per_trade": 0.1}}})
    assert s.risk_level is RiskLevel.AGGRESSIVE and s.limits.max_stake_per_trade == 0.1
    assert s.multiplier(RiskLevel.CONSERVATIVE) == 0.5
    assert [lvl.rank for lvl in RiskLevel] == [0, 1, 2]


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"risk_level": "yolo"}, "hybrid_ai.risk_level"),
        ({"limits": {"max_total_exposure": 1.5}}, "hybrid_ai.limits.max_total_exposure"),
        ({"limits": {"max_stake": 0.1}}, "hybrid_ai.limits.max_stake"),
        ({"stake_multipliers": {"moderate": 1.0}}, "lacks risk levels"),
        ({"stake_multipliers": {"conservative": 2, "moderate": 1, "aggressive": 1.5}},
         "stake_multipliers must not loosen"),
        ({"oracle": {"max_open_trades": {"conservative": 2, "moderate": 3}}},
         "max_open_trades lacks risk levels"),
        ({"oracle": {"max_open_trades": {"conservative": 5, "moderate": 3, "aggressive": 4}}},
         "max_open_trades must not loosen"),
        ({"ml": {"ev_margin": {"conservative": 0.0, "moderate": 0.002,
                               "aggressive": 0.0}}}, "ev_margin must not"),
        ({"oracle": {"grace": 5}}, "hybrid_ai.oracle.grace"),
        ({"oracle": {"overnight_at": "25:00"}}, "not HH:MM"),
    ],
)
def test_bad_settings_name_the_key_to_fix(section, fragment):
    with pytest.raises(SettingsError, match=fragment.replace(".", r"\.")):
        load_settings({"hybrid_ai": section})


def test_settings_unknown_oracle_keys_are_refused():
    from llm_oracle.settings import OracleSettingsError, load_oracle_settings

    with pytest.raises(OracleSettingsError, match=r"llm_oracle\.grace_minutes"):
        load_oracle_settings({"llm_oracle": {"grace_minutes": 30}})  # nothing read it
