"""From a provider's text to a decision the bot may follow, or a recorded rejection.

The LLM steers, it never overrides: pairs outside the universe are dropped, numbers are
clamped to the configured caps, reasoning is cut to length. What cannot be read as an
answer at all is rejected and never becomes the profile.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
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
    """The index after the ``}`` closing the ``{`` at ``start``, or None when it is never
    closed. Strings in double or single quotes (JSON, a Python literal) and comments
    (``//``, ``/* */``, ``#``) are respected: a ``}`` inside them closes nothing."""
    depth, quote, escaped = 0, "", False
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" or text.startswith("//", i):
            newline = text.find("\n", i)
            if newline == -1:
                return None
            i = newline
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close == -1:
                return None
            i = close + 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


# JSON's words where a Python literal has its own (``{'risk_level': 'low', 'x': null}``);
# quoted strings are matched first so a word inside one is left alone.
_JSON_WORDS = re.compile(r"""(?P<s>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
                         r"|\b(?P<w>true|false|null)\b", re.DOTALL)
_PYTHON_WORDS = {"true": "True", "false": "False", "null": "None"}
READ_AS_PYTHON = "python"


def _json_error(exc: json.JSONDecodeError) -> str:
    return f"{exc.msg}: line {exc.lineno} column {exc.colno}"


def _python_literal(span: str) -> Any:
    """``span`` read as a Python literal by ``ast.literal_eval`` (nothing is evaluated:
    only literals, no names, calls or operators); JSON's true/false/null are read as
    True/False/None. Raises ``ValueError`` with the literal's error."""
    source = _JSON_WORDS.sub(lambda m: m.group("s") or _PYTHON_WORDS[m.group("w")], span)
    try:
        return ast.literal_eval(source)
    except SyntaxError as exc:
        raise ValueError(f"{exc.msg}: line {exc.lineno} column {exc.offset}") from exc
    except (ValueError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def _loads(span: str) -> tuple[Any, str]:
    """``span`` as a value and how it was read: ``"json"`` (strict), ``"lenient"`` (JSON with
    comments and trailing commas, which small local models write) or ``READ_AS_PYTHON``
    (a Python literal: single quotes, None/True/False, as small models answer); the last
    is tried only when both JSON readers fail. Raises ``ValueError`` naming the strict JSON
    error (and the Python literal's, when the span looks like one)."""
    try:
        return json.loads(span), "json"
    except json.JSONDecodeError as exc:
        strict = _json_error(exc)
    except RecursionError:
        strict = "nested too deeply"
    try:
        return rapidjson.loads(span, parse_mode=rapidjson.PM_COMMENTS
                               | rapidjson.PM_TRAILING_COMMAS), "lenient"
    except (ValueError, RecursionError):
        pass
    try:
        return _python_literal(span), READ_AS_PYTHON
    except ValueError as exc:
        looks_python = re.match(r"\{\s*'", span) is not None
        raise ValueError(f"{strict}; as a Python literal: {exc}" if looks_python
                         else strict) from None


@dataclass(frozen=True)
class _Unparsed:
    """The longest ``{...}`` span that is no object: where it starts and ends (the text's
    end when it is never closed), why."""

    start: int
    end: int
    why: str

    def __str__(self) -> str:
        return f"the answer's object at char {self.start} {self.why}"


@dataclass(frozen=True)
class _Found:
    """An object found in the text: its value, how it was read, where it stands."""

    value: dict[str, Any]
    how: str
    start: int
    end: int


def _scan(text: str) -> tuple[list[_Found], _Unparsed | None]:
    """Every top-level object in ``text`` in order, and the longest ``{...}`` span that is
    no object (None when there is none: every ``{`` started an object, or there was no
    ``{``). Objects nested in a span that fails are still found."""
    found: list[_Found] = []
    worst: tuple[int, int, str | None] | None = None  # start, end, why (None: unclosed)
    i = text.find("{")
    while i != -1:
        end = _balanced(text, i)
        why: str | None = None
        if end is not None:
            try:
                value, how = _loads(text[i:end])
            except ValueError as exc:
                value, why = None, f"does not parse: {exc}"
            if isinstance(value, dict):
                found.append(_Found(value, how, i, end))
                i = text.find("{", end)
                continue
            why = why or f"is a {type(value).__name__}, not an object"
        stop = len(text) if end is None else end
        if worst is None or stop - i > worst[1] - worst[0]:
            worst = (i, stop, why)
        i = text.find("{", i + 1)
    if worst is None:
        return found, None
    start, stop, why = worst
    if why is None:  # never closed: what the JSON reader says of the rest (asked once)
        try:
            json.loads(text[start:])
            why = "is never closed"
        except json.JSONDecodeError as exc:
            why = f"is never closed: {_json_error(exc)}"
        except RecursionError:
            why = "is never closed (and nested too deeply)"
    return found, _Unparsed(start, stop, why)


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in ``text``, in order: plain JSON, fenced blocks and
    objects inside prose alike, read leniently (comments, trailing commas, a Python
    literal; see ``_loads``). A ``{`` that starts no valid object, as in
    ``{focus_pairs, risk_level}``, is skipped."""
    return [f.value for f in _scan(text)[0]]


def parse_answer(text: str, universe: list[str], settings: OracleSettings,
                 unmask: Callable[[Any], Any] | None = None,
                 ) -> tuple[OracleAnswer, list[str], str]:
    """The model's final answer, validated: (answer, notes, thinking).

    Thinking is split off first (``split_thinking``) and never parsed. Of the objects
    left, the last that validates wins; when there was more than one, the notes say so,
    and an object read as a Python literal is noted too. ``unmask`` (a masked prompt's
    ``Mask.answer``) maps each object's aliases back to the universe's pairs before
    validation. Raises ``AnswerError`` with the reason when none validates: "no JSON
    object in the answer" only when it has no ``{`` at all; otherwise the parse error of
    the longest span that is no object ("the answer's object at char N does not parse:
    Expecting ',' delimiter: line 1 column 40"), or the validation error.
    """
    answer_text, thinking = split_thinking(text)
    try:  # the whole answer JSON-encoded once more, as a string: decode it first
        inner = json.loads(answer_text)
        answer_text = inner if isinstance(inner, str) else answer_text
    except (ValueError, RecursionError):
        pass
    candidates, unparsed = _scan(answer_text)
    if not candidates:
        if unparsed:
            raise AnswerError(str(unparsed))
        where = " after the model's thinking" if thinking else ""
        raise AnswerError(f"no JSON object in the answer{where} ({answer_text[:80]!r}...)")
    errors: list[str] = []
    for index in range(len(candidates) - 1, -1, -1):
        found = candidates[index]
        try:
            candidate = found.value if unmask is None else unmask(found.value)
            answer, notes = validate_answer(candidate, universe, settings)
        except AnswerError as exc:
            errors.append(str(exc))
            continue
        if found.how == READ_AS_PYTHON:
            notes.insert(0, "read as a Python literal (single quotes, None/True/False), "
                            "not JSON")
        if len(candidates) > 1:
            notes.insert(0, f"{len(candidates)} JSON objects in the answer: used the last one "
                            f"that validates (#{index + 1})")
        return answer, notes, thinking
    reason = (errors[0] if len(errors) == 1 else
              f"none of the {len(candidates)} JSON objects in the answer validates; "
              f"the last: {errors[0]}")
    if unparsed and any(unparsed.start < f.start and f.end <= unparsed.end
                        for f in candidates):
        reason += f"; {unparsed}"  # the object around them did not parse
    raise AnswerError(reason)


def _pair_key(pair: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", pair.upper())


class _PairNames:
    """How models spell a universe's pairs, mapped back to them: "BTC/USDT" itself, then
    the pair with another separator or case ("btc_usdt", "BTC-USDT", "BTCUSDT"), then a
    futures pair by its spot part ("BTC/USDT" for "BTC/USDT:USDT"), then a bare base
    ("BTC", "btc") when exactly one pair of the universe has it."""

    def __init__(self, universe: list[str]) -> None:
        self.universe = list(universe)
        self.tables: list[dict[str, list[str]]] = [{}, {}, {}]
        for pair in dict.fromkeys(universe):
            spot = pair.split(":")[0]
            for table, name in zip(self.tables, (pair, spot, spot.split("/")[0]),
                                   strict=True):
                table.setdefault(_pair_key(name), []).append(pair)

    def resolve(self, name: str) -> tuple[str | None, list[str]]:
        """(the pair ``name`` means, []) or (None, the candidates: none when it names no
        pair of the universe, several when it is ambiguous)."""
        if name in self.universe:
            return name, []
        key = _pair_key(name)
        for table in self.tables:
            pairs = table.get(key) if key else None
            if pairs:
                return (pairs[0], []) if len(pairs) == 1 else (None, pairs)
        return None, []

    def respell(self, names: list[str], what: str,
                notes: list[str]) -> tuple[dict[str, str], list[str]]:
        """({name: its universe pair} for the names that map, the names that do not); the
        notes name every respelling, every drop and every ambiguity."""
        mapped: dict[str, str] = {}
        outside: list[str] = []
        for name in dict.fromkeys(names):
            pair, candidates = self.resolve(name)
            if pair is not None:
                mapped[name] = pair
            elif candidates:
                outside.append(name)
                notes.append(f"{what}: dropped {name!r}: ambiguous, the universe has "
                             f"{' and '.join(candidates)}")
            else:
                outside.append(name)
        respelled = [f"{a}->{b}" for a, b in mapped.items() if a != b]
        if respelled:
            notes.append(f"{what}: pairs respelled as in the universe: {respelled}")
        unknown = [n for n in outside if not self.resolve(n)[1]]
        if unknown:
            notes.append(f"{what}: dropped pairs outside the universe: {unknown}")
        return mapped, outside


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number or a numeric string; None otherwise (an
    int too large for a float is infinite)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return None


def _finite(value: Any) -> bool:
    number = _number(value)
    return number is None or math.isfinite(number)


def _bias_items(bias: Any, notes: list[str]) -> Any:
    """``pair_bias`` as a dict, from either form (``{"BTC/USDT": 0.5}`` or strict output's
    ``[{"pair": "BTC/USDT", "bias": 0.5}]``); items without a pair name and a bias dropped
    and noted. Anything else is returned as is (the schema rejects it)."""
    if not isinstance(bias, list):
        return bias
    items = [item for item in bias if isinstance(item, dict)
             and isinstance(item.get("pair"), str) and "bias" in item]
    if len(items) < len(bias):
        notes.append(f"pair_bias: dropped {len(bias) - len(items)} item(s) without a pair "
                     "name and a bias")
    out: dict[Any, Any] = {}
    for item in items:
        if item["pair"] in out:
            notes.append(f"pair_bias: {item['pair']!r} named twice: kept the last")
        out[item["pair"]] = item["bias"]
    return out


def _normalised(raw: dict[str, Any], universe: list[str], notes: list[str]) -> dict[str, Any]:
    """What small models get almost right, put right and noted: numbers as strings
    ("0.6"), a risk level in other case ("Moderate"), a null where the schema has a
    default (``pair_bias: None``: no bias), pairs spelled otherwise ("btcusdt", "SOL-USDT",
    a bare "BTC" for the one BTC pair; see ``_PairNames``) in ``focus_pairs`` and in
    ``pair_bias`` alike, a non-finite bias (NaN, Infinity: dropped).

    Raises ``AnswerError`` when ``focus_pairs`` names pairs and none of them maps to the
    universe (an explicitly empty list is kept: no focus).
    """
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
    for key, meaning in (("pair_bias", "no bias"), ("reasoning", "none given")):
        if key in data and data[key] is None:
            del data[key]  # the schema's default
            notes.append(f"{key} null: read as {meaning}")
    names = _PairNames(universe)
    focus = data.get("focus_pairs")
    if isinstance(focus, list) and all(isinstance(p, str) for p in focus):
        mapped, outside = names.respell(focus, "focus_pairs", notes)
        if focus and not mapped:
            ambiguous = "".join(f"; {n!r} is ambiguous: {' or '.join(names.resolve(n)[1])}"
                                for n in outside if names.resolve(n)[1])
            raise AnswerError(f"every focus pair named is outside the universe: {outside} "
                              f"(the universe: {names.universe}{ambiguous})")
        data["focus_pairs"] = [mapped[p] for p in focus if p in mapped]
    bias = _bias_items(data.get("pair_bias"), notes)
    if isinstance(bias, dict):
        kept = {}
        non_finite = {k: v for k, v in bias.items() if not _finite(v)}
        if non_finite:
            notes.append("pair_bias: dropped non-finite bias: "
                         + ", ".join(f"{k} {v}" for k, v in non_finite.items()))
        bias = {k: v for k, v in bias.items() if k not in non_finite}
        mapped, _ = names.respell([k for k in bias if isinstance(k, str)], "pair_bias", notes)
        for key, value in bias.items():
            if not isinstance(key, str):
                kept[key] = value  # the schema rejects it
            elif key in mapped:
                pair = mapped[key]
                if pair in kept:
                    notes.append(f"pair_bias: {pair} named twice: kept {key!r} ({value})")
                kept[pair] = value
        data["pair_bias"] = kept
    elif "pair_bias" in data:
        data["pair_bias"] = bias
    return data


def validate_answer(raw: dict[str, Any], universe: list[str],
                    settings: OracleSettings) -> tuple[OracleAnswer, list[str]]:
    """Clamp and filter ``raw`` into an ``OracleAnswer``; returns it and what was changed.

    Non-finite numbers (NaN, Infinity; also a JSON ``1e999``) never pass: in
    ``max_exposure`` or ``overnight_target`` they reject the answer (``AnswerError``
    naming the key); in ``max_position`` they count as missing (the cap, noted); a
    non-finite bias is dropped (noted, naming the pair). Raises ``AnswerError`` for what
    the schema refuses.
    """
    notes: list[str] = []
    data = _normalised(raw, universe, notes)
    for key in ("max_exposure", "overnight_target"):
        if not _finite(data.get(key)):
            raise AnswerError(f"{key} is {data[key]}: not a finite number")
    position = data.get("max_position")
    if position is None:
        data["max_position"] = settings.max_position_cap
        notes.append(f"max_position missing: set to the cap {settings.max_position_cap}")
    elif not _finite(position):
        data["max_position"] = settings.max_position_cap
        notes.append(f"max_position {position} is not a finite number: set to the cap "
                     f"{settings.max_position_cap}")
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
    bias = {}
    for pair, value in answer.pair_bias.items():
        if pair in known:
            bias[pair] = min(max(value, -1.0), 1.0)
            if bias[pair] != value:
                notes.append(f"pair_bias: {pair} {value} clamped to {bias[pair]}")
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
