"""The oracle's decisions and trims told through freqtrade's messaging
(``hybrid_ai.oracle.announce``); the path through a dry-run bot's RPC is in ``test_live.py``."""

from __future__ import annotations

from datetime import UTC, datetime

from hybrid_ai.oracle.announce import (
    REASONING_CHARS,
    Announcer,
    decision_message,
    reasoning_excerpt,
    trim_message,
)
from hybrid_ai.oracle.feed import Guidance
from llm_oracle.schema import RiskLevel

AT = datetime(2024, 8, 20, 12, 0, 30, tzinfo=UTC)


def guidance(**changes) -> Guidance:
    values = dict(valid=True, risk_level=RiskLevel.CONSERVATIVE,
                  focus=frozenset({"ETH/USDT", "BTC/USDT"}), max_exposure=0.3,
                  max_position=0.05, overnight_target=0.1, decided_at=AT, session="12:00Z",
                  source="openai/qwen2.5-1.5b-instruct",
                  reasoning="BTC broke its 50-hour average.\n\nVolatility doubled.\n"
                            "Funding is negative.\nA fourth line the message leaves out.")
    return Guidance(**(values | changes))


def test_a_decision_says_who_when_the_level_the_caps_the_focus_and_why():
    text = decision_message(guidance())
    assert text.startswith("Oracle decision 12:00Z (openai/qwen2.5-1.5b-instruct, "
                           "2024-08-20 12:00 UTC): risk conservative")
    assert "exposure <= 30%" in text and "per trade <= 5%" in text and "overnight 10%" in text
    assert "focus BTC/USDT, ETH/USDT." in text
    assert text.endswith("Why: BTC broke its 50-hour average. / Volatility doubled. / "
                         "Funding is negative.")


def test_a_decision_without_focus_or_reasoning_says_so_plainly():
    text = decision_message(guidance(focus=frozenset(), reasoning=""))
    assert "focus none (no pair favoured)." in text and "Why" not in text


def test_a_long_reasoning_is_cut_to_its_limit():
    assert len(reasoning_excerpt("x" * 5000)) == REASONING_CHARS


def test_a_trim_names_the_pair_the_sale_and_the_decision_behind_it():
    text = trim_message("BTC/USDT", "oracle_derisk", 247.5, 49.5, guidance(), "USDT")
    assert text == ("BTC/USDT: oracle_derisk sells 80% of the trade (stake 247.50 -> 49.50 "
                    "USDT), following the oracle decision of 2024-08-20 12:00 UTC: risk "
                    "conservative, per trade <= 5%, overnight 10%.")
    assert "closes the trade" in trim_message("BTC/USDT", "oracle_derisk", 10, 0, guidance(),
                                              "USDT")


def test_each_decision_and_each_trim_is_sent_once():
    sent: list[str] = []
    announcer = Announcer(sent.append)
    for _ in range(3):  # every bot loop
        announcer.decision(guidance())
        announcer.trim("BTC/USDT", "oracle_derisk", 247.5, 49.5, guidance(), "USDT")
    announcer.decision(guidance(valid=False, decided_at=None))  # stale: nothing to tell
    later = datetime(2024, 8, 20, 18, 1, tzinfo=UTC)
    announcer.decision(guidance(decided_at=later, risk_level=RiskLevel.MODERATE))
    assert len(sent) == 3
    assert "risk moderate" in sent[2]


def test_a_broken_messenger_never_reaches_the_bot_loop(caplog):
    def broken(message: str) -> None:
        raise RuntimeError("telegram down")

    announcer = Announcer(broken)
    announcer.decision(guidance())
    announcer.decision(guidance(decided_at=datetime(2024, 8, 21, tzinfo=UTC)))
    assert caplog.text.count("cannot send the oracle's message") == 1


def test_without_a_messenger_nothing_is_sent():
    Announcer(None).decision(guidance())  # backtests: no send_msg, no error
