"""Reading a judge's raw reply: yes/no, A/B, a JSON list of questions, and P("Yes") from logprobs.

Nothing is guessed: a reply that does not start with the expected word is unreadable (None), and
the caller asks once more with the stricter template, then records the answer as failed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_WORD = re.compile(r"[A-Za-z]+")
_LEAD = " \t\r\n\"'`*([{<:.-"  # quoting and markdown a model puts around a one-word answer


def first_word(text: str) -> str:
    m = _WORD.match(text.lstrip(_LEAD))
    return m.group(0).lower() if m else ""


def parse_yes_no(text: str) -> bool | None:
    """True for a reply whose first word is yes, False for no, None otherwise."""
    word = first_word(text)
    return True if word == "yes" else False if word == "no" else None


def parse_choice(text: str) -> str | None:
    """'a' or 'b' for a reply that is the letter (or 'Video A', 'Option B'); None otherwise."""
    word = first_word(text)
    if word in ("video", "option", "clip"):
        rest = text.lstrip(_LEAD)[len(word):]
        word = first_word(rest)
    return word if word in ("a", "b") else None


def parse_questions(text: str) -> list[dict[str, str]] | None:
    """The questions of a decomposition reply: a JSON list of {category, question} objects or of
    strings, optionally inside a code fence. None when it is anything else or empty."""
    body = text.strip()
    fence = re.match(r"^```[a-zA-Z]*\s*(.*?)\s*```$", body, re.S)
    if fence:
        body = fence.group(1)
    try:
        items = json.loads(body)
    except ValueError:
        return None
    if not isinstance(items, list) or not items:
        return None
    out = []
    for item in items:
        if isinstance(item, str) and item.strip():
            out.append({"category": "other", "question": item.strip()})
        elif isinstance(item, dict) and isinstance(item.get("question"), str) and item["question"].strip():
            out.append({"category": str(item.get("category") or "other"), "question": item["question"].strip()})
        else:
            return None
    return out


def first_token_distribution(choice: dict[str, Any]) -> dict[str, float] | None:
    """{normalized word: probability} over the first answer token's top_logprobs (OpenAI format:
    choices[0].logprobs.content[0].top_logprobs); tokens that normalize alike ("Yes", " yes")
    add up. None when the reply carries no logprobs."""
    content = ((choice.get("logprobs") or {}).get("content")) or []
    # The first token that holds a word: some servers emit a leading space or quote token.
    for tok in content:
        if not isinstance(tok, dict):
            return None
        if not first_word(str(tok.get("token", ""))):
            continue
        tops = tok.get("top_logprobs") or [{"token": tok.get("token", ""), "logprob": tok.get("logprob")}]
        dist: dict[str, float] = {}
        for t in tops:
            lp = t.get("logprob") if isinstance(t, dict) else None
            if not isinstance(lp, (int, float)) or not math.isfinite(lp):
                continue
            word = first_word(str(t.get("token", "")))
            dist[word] = dist.get(word, 0.0) + math.exp(lp)
        return dist or None
    return None


def probability_of(choice: dict[str, Any], word: str) -> float | None:
    """P(first answer token is `word`), as VQAScore reads P("Yes"); None without logprobs.
    A word absent from the top_logprobs gets 0 (it is less likely than every listed token)."""
    dist = first_token_distribution(choice)
    if dist is None:
        return None
    return min(1.0, dist.get(word, 0.0))
