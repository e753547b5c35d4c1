"""``llm_oracle.once.Once``: a message when it changes, a line when it is over."""

from __future__ import annotations

import logging

import pytest

from llm_oracle.once import Once

NAME = "tests.once"


@pytest.fixture
def once(caplog: pytest.LogCaptureFixture) -> Once:
    caplog.set_level(logging.DEBUG, logger=NAME)
    return Once(logging.getLogger(NAME))


def said(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == NAME]


def test_the_same_message_is_said_once(once, caplog):
    assert once.say("bot", "bot down") is True
    assert once.say("bot", "bot down") is False
    assert once.say("bot", "bot down") is False
    assert said(caplog) == [(logging.WARNING, "bot down")]


def test_a_different_message_for_the_key_is_said_and_then_the_old_one_again(once, caplog):
    once.say("bot", "bot down (401)")
    once.say("bot", "bot down (timeout)")
    once.say("bot", "bot down (401)")
    assert [m for _, m in said(caplog)] == ["bot down (401)", "bot down (timeout)",
                                            "bot down (401)"]


def test_keys_are_independent(once, caplog):
    once.say("BTC/USDT", "stale")
    once.say("ETH/USDT", "stale")
    once.say("BTC/USDT", "stale")
    assert [m for _, m in said(caplog)] == ["stale", "stale"]
    assert "BTC/USDT" in once and "SOL/USDT" not in once


def test_clear_says_once_that_it_is_over_and_the_problem_may_come_back(once, caplog):
    assert once.clear("bot", "bot back") is False  # never had a problem: nothing said
    once.say("bot", "bot down")
    assert once.clear("bot", "bot back") is True
    assert once.clear("bot", "bot back") is False
    assert "bot" not in once and once.last("bot") is None
    once.say("bot", "bot down")  # a new episode is said again
    assert said(caplog) == [(logging.WARNING, "bot down"), (logging.INFO, "bot back"),
                            (logging.WARNING, "bot down")]


def test_clear_without_a_message_forgets_in_silence(once, caplog):
    once.say("bot", "bot down")
    assert once.clear("bot") is True
    assert once.say("bot", "bot down") is True
    assert said(caplog) == [(logging.WARNING, "bot down")] * 2


def test_levels_and_the_last_message(once, caplog):
    once.say(("model", 1), "slow", level=logging.INFO)
    once.clear(("model", 1), "fast again", level=logging.DEBUG)
    once.say("x", "odd % text %s")  # logged as is, never %-formatted
    assert said(caplog) == [(logging.INFO, "slow"), (logging.DEBUG, "fast again"),
                            (logging.WARNING, "odd % text %s")]
    assert once.last("x") == "odd % text %s"


def test_the_bot_view_says_an_outage_once_per_problem(caplog):
    from llm_oracle import bot_api

    view = bot_api.BotView.__new__(bot_api.BotView)
    view._problems = Once(bot_api.logger)
    answers = iter([ConnectionError("refused"), ConnectionError("refused"),
                    TimeoutError("slow"), None, ConnectionError("refused")])

    class Client:
        def status(self):
            exc = next(answers)
            if exc is not None:
                raise exc
            return []

        def profit(self):
            return {}

    view.client, view.timeframe = Client(), "5m"
    caplog.set_level(logging.WARNING, logger=bot_api.logger.name)
    results = [view.snapshot([]) for _ in range(5)]
    assert results[:3] == [{}, {}, {}] and results[3]["portfolio"]["open_trades"] == []
    assert [r.getMessage() for r in caplog.records if r.name == bot_api.logger.name] == [
        "bot API unavailable for the oracle context (ConnectionError: refused)",
        "bot API unavailable for the oracle context (TimeoutError: slow)",
        "bot API unavailable for the oracle context (ConnectionError: refused)"]
