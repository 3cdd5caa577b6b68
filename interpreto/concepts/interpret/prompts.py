"""Prompt templates for concept labels and label scores, how examples are written into them, and how answers are
read back.

An example is its context window written as plain text, with the tokens on which the concept fires between
`<<` and `>>` (a run of consecutive firing tokens shares one pair; the spaces around a run stay outside it). Answers
are read leniently: a label is the phrase after a `Label:`-like marker (else the first line), stripped of quotes
and end punctuation; a yes/no answer is its first word; a simulation is one `token<tab>value` line per token (or a
JSON list), with missing or unreadable values read as 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from interpreto.concepts.interpret.codes import ContextToken

OPEN, CLOSE = "<<", ">>"

LABEL_SYSTEM = (
    "You are an interpretability researcher. You are shown text excerpts in which one feature of a language "
    f"model is active; the tokens on which it is active are between {OPEN} and {CLOSE}. Find what the highlighted "
    "tokens have in common (their meaning, their form, or their context) and name it with a short label: a few "
    "words, one phrase, no explanation."
)
LABEL_QUESTION = 'What do the highlighted tokens have in common? Answer on one line starting with "Label:".'
LABEL_USER = "{examples}\n\nHighlighted tokens: {highlighted}\n\n" + LABEL_QUESTION
# worked examples that start the conversation (small models copy the format, and with a single one its answer)
LABEL_FEW_SHOT = (
    (
        "Example 1: We flew to <<Paris>> last spring.\nExample 2: The train from <<Rome>> was late.",
        "Paris, Rome",
        "Label: city names",
    ),
    (
        "Example 1: He <<ran>> home and <<jumped>> over it.\nExample 2: They <<swim>> every day.",
        "ran, jumped, swim",
        "Label: verbs of movement",
    ),
)
ACTIVATIONS_NOTE = "Each example is followed by the activation of its highlighted tokens, from 0 to 10."

JUDGE_SYSTEM = "You check descriptions of features of a language model against texts. Answer yes or no."
DETECTION_USER = (
    "Description: {label}\nText: {text}\n\nDoes this text contain something that matches the description? "
    "Answer yes or no."
)
FUZZING_USER = (
    "Description: {label}\nText: {text}\n\n"
    f"Some tokens of the text are between {OPEN} and {CLOSE}. Do these highlighted tokens match the description? "
    "Answer yes or no."
)
SIMULATION_SYSTEM = (
    "You predict how strongly a feature of a language model fires on each token of a text, from a description of "
    "the feature. Activations go from 0 (not at all) to 10 (the strongest); most tokens are 0."
)
SIMULATION_USER = (
    "Description: {label}\nText: {text}\n\nTokens:\n{tokens}\n\n"
    "For each token above, in the same order, write one line: the token, a tab, and its activation (an integer "
    "from 0 to 10)."
)

_LABEL = re.compile(r"\blabel\b\W*?(?:\s+is)?\s*[:=]\s*(.*)$", re.IGNORECASE)
_OTHER = re.compile(
    r"^\W*(?:explanation|answer|concept|feature)\W*?(?:\s+is)?\s*[:=\-]\s*(.*)$", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_STRIP = " \t\"'`*_“”‘’«»[]().,;:!?-"


def render(context: Sequence[ContextToken], highlighted: Sequence[bool] | None = None) -> str:
    """A context as one line of plain text, the `highlighted` tokens between `<<` and `>>` (None: none).

    Examples:
        >>> tokens = [ContextToken(t, 0.0) for t in ["The", " red", " car", " stopped"]]
        >>> render(tokens, [False, True, True, False])
        'The <<red car>> stopped'
    """
    highlighted = [False] * len(context) if highlighted is None else list(highlighted)
    pieces: list[str] = []
    k = 0
    while k < len(context):
        if not highlighted[k]:
            pieces.append(context[k].text)
            k += 1
            continue
        end = k
        while end < len(context) and highlighted[end]:
            end += 1
        run = "".join(token.text for token in context[k:end])
        core = run.strip()
        if core:
            left = run[: len(run) - len(run.lstrip())]
            right = run[len(run.rstrip()) :]
            pieces.append(f"{left}{OPEN}{core}{CLOSE}{right}")
        else:
            pieces.append(run)
        k = end
    return " ".join("".join(pieces).split())


def parse_label(answer: str) -> str:
    """The label in an LLM's answer: the text after the first `Label:` marker (`Label:`, `The label is:`), else
    after the last `[EXPLANATION]:`/`Answer:`-like marker, else the first non-empty line; surrounding quotes,
    markdown and end punctuation removed (a marker alone on its line takes the next line).

    Examples:
        >>> parse_label('Sure! Here it is.\\nLabel: "colour words".')
        'colour words'
        >>> parse_label("[EXPLANATION]: Names of animals")
        'Names of animals'
        >>> parse_label("**Names of animals**\\nThe examples all show animals.")
        'Names of animals'
    """
    lines = [line.strip() for line in str(answer).splitlines() if line.strip()]
    found = _after_marker(lines, _LABEL, first=True)
    if found is None:
        found = _after_marker(lines, _OTHER, first=False)
    text = found if found is not None else (lines[0] if lines else "")
    return " ".join(text.strip(_STRIP).split())


def _after_marker(lines: list[str], marker: re.Pattern, first: bool) -> str | None:
    found = None
    for k, line in enumerate(lines):
        match = marker.search(line)
        if match:
            found = match.group(1).strip() or (lines[k + 1] if k + 1 < len(lines) else "")
            if first:
                return found
    return found


def parse_yes_no(answer: str) -> bool | None:
    """True for an answer starting with yes, False for no, None otherwise.

    Examples:
        >>> parse_yes_no("Yes, it does."), parse_yes_no("no"), parse_yes_no("maybe")
        (True, False, None)
    """
    words = re.findall(r"[a-z]+", str(answer).lower())
    if not words:
        return None
    if words[0] in ("yes", "y", "true"):
        return True
    if words[0] in ("no", "n", "false"):
        return False
    return None


def parse_simulation(answer: str, n_tokens: int) -> tuple[list[float], int]:
    """`n_tokens` predicted activations in `[0, 10]` from an answer, and how many were read.

    A JSON list (of numbers, `[token, value]` pairs or `{"activation": value}` objects) is read in order;
    otherwise each line that holds a tab or ends with a number is one token, in order, its value the line's last
    number (0 when none). Tokens without a line get 0.

    Examples:
        >>> parse_simulation("The\\t0\\nred\\t9\\ncar\\tunknown", 4)
        ([0.0, 9.0, 0.0, 0.0], 2)
        >>> parse_simulation("[0, 10, 3]", 3)
        ([0.0, 10.0, 3.0], 3)
    """
    values: list[float | None] = _json_values(answer)
    if values is None:
        values = []
        for line in str(answer).splitlines():
            if not line.strip():
                continue
            numbers = _NUMBER.findall(line)
            if "\t" in line or (numbers and line.rstrip().endswith(numbers[-1])):
                values.append(float(numbers[-1]) if numbers else None)
    read = [v for v in values[:n_tokens] if v is not None]
    out = [min(10.0, max(0.0, float(v))) if v is not None else 0.0 for v in values[:n_tokens]]
    return out + [0.0] * (n_tokens - len(out)), len(read)


def _json_values(answer: str) -> list[float | None] | None:
    start, end = answer.find("["), answer.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(answer[start : end + 1])
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(data, list):
        return None
    values: list[float | None] = []
    for item in data:
        if isinstance(item, dict):
            item = item.get("activation", item.get("value"))
        elif isinstance(item, list) and item:
            item = item[-1]
        values.append(float(item) if isinstance(item, (int, float)) and not isinstance(item, bool) else None)
    return values
