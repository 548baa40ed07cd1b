"""Where a reasoning block starts, read from the prompt: :class:`PromptScanner`.

Chat templates differ: Qwen3-2507-thinking and DeepSeek-R1 open the block in the prompt
(``...assistant\\n<think>\\n``), Qwen3 with ``enable_thinking=False`` writes a closed one
(``<think>\\n\\n</think>\\n\\n``), others leave it to the model. The scanner looks at a row's
prompt tokens once (not per step):

- if the last ``start`` comes after the last ``end``, generation starts inside the reasoning
  (the template opened the block);
- if an ``end`` follows the last ``start`` and only whitespace (space, tab, newline, carriage
  return) follows the last ``end``, at the answer (the template closed the block just now);
- otherwise the output must begin with ``start``: no ``start`` at all, or a closed block that
  belongs to the history of a multi-turn chat (an earlier answer, ``<|im_end|>``, a new turn
  and ``<|im_start|>assistant\\n`` after it).

Token markers are found as their token ids, text markers as bytes of the decoded prompt; any other
byte-less token (a special such as ``<|im_end|>``) breaks a match and is not whitespace.

Example:
    >>> import pse_processors as pse
    >>> vocab = pse.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
    >>> matcher = pse.compile(pse.Reasoning(pse.Choice(["yes"]), start="<t>", end="</t>"), vocab)
    >>> [matcher.prompt_scanner.category(list(p)) for p in (b"Q?", b"Q?<t>", b"Q?<t>x</t>\\n")]
    [0, 1, 2]
    >>> matcher.prompt_scanner.category(list(b"Q?<t>x</t>yes. Q2?"))  # a closed block in the history
    0
"""

from __future__ import annotations

from typing import Any, Iterable

from ..constraints.markers import spelling_of_marker
from ..constraints.structure import ReasoningMarkers

#: Categories: the output starts with ``start``, inside the reasoning, or at the answer.
START, INSIDE, ANSWER = 0, 1, 2
#: The units that may follow a closed block at the prompt's end (a template's ``"\\n\\n"``).
WHITESPACE = " \t\n\r"
_BARRIER = chr(0x10000)  # a byte-less token that is no marker: no marker spans it


def unit_text(units: Iterable[Any], symbols: dict[int, int]) -> str:
    """Marker units as a str: bytes as chr(0-255), special token ``t`` as chr(256 + symbols[t])."""
    out = []
    for unit in units:
        out.append(unit.decode("latin-1") if isinstance(unit, bytes) else chr(256 + symbols[unit]))
    return "".join(out)


class PromptScanner:
    """The start category and state of a generation after its prompt (see the module docstring).

    ``states`` are the matcher's states for each category: initial, after ``start``, after ``start``
    and ``end``."""

    def __init__(self, matcher: Any, markers: ReasoningMarkers) -> None:
        vocabulary = matcher.vocabulary
        tokens = sorted({u for u in (*markers.start, *markers.end) if isinstance(u, int)})
        self._symbols = {t: k for k, t in enumerate(tokens)}
        self._start = unit_text(markers.start, self._symbols)
        self._end = unit_text(markers.end, self._symbols)
        self._token_bytes = vocabulary.token_bytes
        inside = matcher.walk(spelling_of_marker(vocabulary, markers.start))
        answer = matcher.walk(spelling_of_marker(vocabulary, (*markers.start, *markers.end)))
        self.states = (matcher.initial_state, inside, answer)

    def category(self, prompt_ids: Iterable[int]) -> int:
        """:data:`START`, :data:`INSIDE` or :data:`ANSWER` for a prompt."""
        parts = []
        size = len(self._token_bytes)
        for token in prompt_ids:
            token = int(token)
            symbol = self._symbols.get(token)
            if symbol is not None:
                parts.append(chr(256 + symbol))
                continue
            data = self._token_bytes[token] if 0 <= token < size else None
            parts.append(_BARRIER if data is None else data.decode("latin-1"))
        text = "".join(parts)
        start = text.rfind(self._start)
        if start < 0:
            return START
        end = text.rfind(self._end)
        if end < start + len(self._start):
            return INSIDE
        # Closed just now (only whitespace after it), or a block of an earlier turn.
        return ANSWER if text[end + len(self._end):].strip(WHITESPACE) == "" else START

    def __call__(self, prompt_ids: Iterable[int]) -> int:
        return self.states[self.category(prompt_ids)]
