"""From a provider's text to a decision the bot may follow, or a recorded rejection.

The LLM steers, it never overrides: pairs outside the universe are dropped, numbers are
clamped to the configured caps, reasoning is cut to length. What cannot be read as an
answer at all is rejected and never becomes the profile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import rapidjson
from pydantic import ValidationError

from llm_oracle.schema import REASONING_MAX_CHARS, OracleAnswer, OracleDecision, RiskLevel
from llm_oracle.settings import OracleSettings

# Reasoning models think aloud before answering; the thinking is never the answer. Tags as
# models print them: <think> (DeepSeek-R1, Qwen3), [THINK] (Magistral), ◁think▷ (Kimi).
_NAMES = r"(?:think|thinking|reasoning|reflection)"
_OPEN_THINK = re.compile(rf"(?:<|\[|◁){_NAMES}(?:>|\]|▷)", re.IGNORECASE)
_CLOSE_THINK = re.compile(rf"(?:<|\[|◁)/{_NAMES}(?:>|\]|▷)", re.IGNORECASE)
_THINK = re.compile(rf"{_OPEN_THINK.pattern}.*?{_CLOSE_THINK.pattern}", re.DOTALL | re.IGNORECASE)
# gpt-oss's harmony format when a server passes it through unparsed: the analysis channel
# is thinking, the answer follows the last "final" channel marker.
_HARMONY_FINAL = "<|channel|>final<|message|>"
_HARMONY_TOKENS = re.compile(r"<\|(?:end|return|start|call)\|>(?:assistant)?")


class AnswerError(ValueError):
    """The answer cannot be used; the message says why (it goes into the journal)."""


def split_thinking(text: str) -> tuple[str, str]:
    """(the final answer, the thinking) of a reply.

    ``<think>…</think>`` blocks (also ``thinking``, ``reasoning``, ``reflection``) are
    thinking, wherever they stand. Some chat templates put the opening tag in the prompt,
    so the reply only has the closing one: everything before the last closing tag is
    thinking. An opening tag never closed means the model was cut off while thinking.
    """
    thoughts: list[str] = []
    if _HARMONY_FINAL in text:
        before, _, text = text.rpartition(_HARMONY_FINAL)
        thoughts.append(_HARMONY_TOKENS.sub("", before))
        text = _HARMONY_TOKENS.sub("", text)
    thoughts += [m.group(0) for m in _THINK.finditer(text)]
    answer = _THINK.sub("", text)
    closes = list(_CLOSE_THINK.finditer(answer))
    if closes:  # "...thinking</think> answer": the opening tag was in the template
        thoughts.insert(0, answer[: closes[-1].end()])
        answer = answer[closes[-1].end():]
    opened = _OPEN_THINK.search(answer)
    if opened:
        thoughts.append(answer[opened.start():])
        answer = answer[: opened.start()]
    return answer.strip(), "\n".join(t.strip() for t in thoughts)


def _balanced(text: str, start: int) -> int | None:
    """The index after the ``}`` closing the ``{`` at ``start`` (strings respected), or None."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _loads(span: str) -> Any:
    """Strict JSON, else JSON with comments and trailing commas (small local models write
    both); raises ``ValueError``."""
    try:
        return json.loads(span)
    except ValueError:
        return rapidjson.loads(span, parse_mode=rapidjson.PM_COMMENTS
                               | rapidjson.PM_TRAILING_COMMAS)


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in ``text``, in order: plain JSON, fenced blocks and
    objects inside prose alike (a ``{`` that starts no valid object, as in
    ``{focus_pairs, risk_level}``, is skipped)."""
    found: list[dict[str, Any]] = []
    i = text.find("{")
    while i != -1:
        end = _balanced(text, i)
        value = None
        if end is not None:
            try:
                value = _loads(text[i:end])
            except ValueError:
                value = None
        if isinstance(value, dict):
            found.append(value)
            i = text.find("{", end)
        else:
            i = text.find("{", i + 1)
    return found


def parse_answer(text: str, universe: list[str], settings: OracleSettings,
                 unmask: Callable[[Any], Any] | None = None,
                 ) -> tuple[OracleAnswer, list[str], str]:
    """The model's final answer, validated: (answer, notes, thinking).

    Thinking is split off first (``split_thinking``) and never parsed. Of the JSON objects
    left, the last that validates wins; when there was more than one, the notes say so.
    ``unmask`` (a masked prompt's ``Mask.answer``) maps each object's aliases back to the
    universe's pairs before validation. Raises ``AnswerError`` with the reason when none
    validates.
    """
    answer_text, thinking = split_thinking(text)
    try:  # the whole answer JSON-encoded once more, as a string: decode it first
        inner = json.loads(answer_text)
        answer_text = inner if isinstance(inner, str) else answer_text
    except ValueError:
        pass
    candidates = json_objects(answer_text)
    if not candidates:
        where = " after the model's thinking" if thinking else ""
        raise AnswerError(f"no JSON object in the answer{where} ({answer_text[:80]!r}...)")
    errors: list[str] = []
    for index in range(len(candidates) - 1, -1, -1):
        try:
            candidate = candidates[index] if unmask is None else unmask(candidates[index])
            answer, notes = validate_answer(candidate, universe, settings)
        except AnswerError as exc:
            errors.append(str(exc))
            continue
        if len(candidates) > 1:
            notes.insert(0, f"{len(candidates)} JSON objects in the answer: used the last one "
                            f"that validates (#{index + 1})")
        return answer, notes, thinking
    raise AnswerError(errors[0] if len(errors) == 1 else
                      f"none of the {len(candidates)} JSON objects in the answer validates; "
                      f"the last: {errors[0]}")


def _pair_key(pair: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", pair.upper())


def _normalised(raw: dict[str, Any], universe: list[str], notes: list[str]) -> dict[str, Any]:
    """What small models get almost right, put right and noted: numbers as strings
    ("0.6"), a risk level in other case ("Moderate"), pairs spelled without the slash or in
    lower case ("btcusdt" for BTC/USDT)."""
    data = dict(raw)
    for key in ("max_exposure", "max_position", "overnight_target"):
        value = data.get(key)
        if isinstance(value, str):
            try:
                data[key] = float(value.strip())
            except ValueError:
                continue
            notes.append(f"{key} {value!r} read as a number")
    level = data.get("risk_level")
    if isinstance(level, str) and level.strip().lower() != level:
        data["risk_level"] = level.strip().lower()
    by_key = {_pair_key(p): p for p in universe}
    focus = data.get("focus_pairs")
    if isinstance(focus, list):
        mapped = [by_key.get(_pair_key(p), p) if isinstance(p, str) else p for p in focus]
        respelled = [f"{a}->{b}" for a, b in zip(focus, mapped, strict=True) if a != b]
        if respelled:
            notes.append(f"pairs respelled as in the universe: {respelled}")
        data["focus_pairs"] = mapped
    return data


def validate_answer(raw: dict[str, Any], universe: list[str],
                    settings: OracleSettings) -> tuple[OracleAnswer, list[str]]:
    """Clamp and filter ``raw`` into an ``OracleAnswer``; returns it and what was changed."""
    notes: list[str] = []
    data = _normalised(raw, universe, notes)
    if data.get("max_position") is None:
        data["max_position"] = settings.max_position_cap
        notes.append(f"max_position missing: set to the cap {settings.max_position_cap}")
    for key, cap in (("max_exposure", settings.max_exposure_cap),
                     ("max_position", settings.max_position_cap), ("overnight_target", 1.0)):
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            clamped = min(max(float(value), 0.0), cap)
            if clamped != value:
                notes.append(f"{key} {value} clamped to {clamped}")
            data[key] = clamped
    exposure, overnight = data.get("max_exposure"), data.get("overnight_target")
    if (isinstance(exposure, float) and isinstance(overnight, float)
            and overnight > exposure):  # no more exposure at night than by day
        notes.append(f"overnight_target {overnight} clamped to max_exposure {exposure}")
        data["overnight_target"] = exposure
    try:
        answer = OracleAnswer.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise AnswerError(f"answer does not match the schema: {reasons}") from exc

    known = set(universe)
    unknown = [p for p in answer.focus_pairs if p not in known]
    if unknown:
        notes.append(f"dropped pairs outside the universe: {unknown}")
    focus = list(dict.fromkeys(p for p in answer.focus_pairs if p in known))
    if len(focus) > settings.max_focus_pairs:
        notes.append(f"focus cut to {settings.max_focus_pairs} pairs")
        focus = focus[: settings.max_focus_pairs]
    if len(focus) < settings.min_focus_pairs:
        raise AnswerError(f"only {len(focus)} valid focus pairs (< {settings.min_focus_pairs})")
    bias = {p: min(max(b, -1.0), 1.0) for p, b in answer.pair_bias.items() if p in known}
    reasoning = answer.reasoning[:REASONING_MAX_CHARS]
    return answer.model_copy(update={"focus_pairs": focus, "pair_bias": bias,
                                     "reasoning": reasoning}), notes


def limit_step_up(answer: OracleAnswer, previous: OracleDecision | None,
                  settings: OracleSettings) -> tuple[OracleAnswer, list[str]]:
    """Risk may fall at once but rise at most ``max_risk_step_up`` levels and
    ``max_exposure_step_up`` of exposure per session, from the last usable decision."""
    if previous is None:
        return answer, []
    notes: list[str] = []
    update: dict[str, object] = {}
    levels = list(RiskLevel)
    top = min(previous.risk_level.rank + settings.max_risk_step_up, len(levels) - 1)
    if answer.risk_level.rank > top:
        update["risk_level"] = levels[top]
        notes.append(f"risk_level {answer.risk_level.value} ramped to {levels[top].value} "
                     f"(at most {settings.max_risk_step_up} level(s) up per session from "
                     f"{previous.risk_level.value})")
    ceiling = round(previous.max_exposure + settings.max_exposure_step_up, 6)
    if answer.max_exposure > ceiling:
        update["max_exposure"] = ceiling
        notes.append(f"max_exposure {answer.max_exposure} ramped to {ceiling} (at most "
                     f"+{settings.max_exposure_step_up} per session from "
                     f"{previous.max_exposure})")
    return (answer.model_copy(update=update) if update else answer), notes
