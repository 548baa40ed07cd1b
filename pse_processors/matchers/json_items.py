"""A JSON text followed byte by byte, for ``uniqueItems``: which array items are complete, and equal.

:class:`ItemScan` is immutable: :meth:`ItemScan.advance` returns the scan after some bytes,
or ``None`` where those bytes would complete an item equal to an earlier item of the same
array (JSON equality, :func:`~pse_processors.json_schema.unique_items.canonical`), or leave
an array of few possible values (an ``enum``) no unused value to start or continue. It
assumes the text is JSON (the grammar checks that); the bytes of items still open in
unique arrays are kept, nothing else.

Example:
    >>> from pse_processors.json_schema.unique_items import UniquePlan
    >>> scan = ItemScan.start(UniquePlan({"type": "array", "uniqueItems": True}))
    >>> scan.advance(b'[1, {"a": [2]}, "x", 1.0') is not None
    True
    >>> scan.advance(b'[1, {"a": [2]}, "x", 1.0,') is None, scan.advance(b'[{"a": 1, "b": 2}, {"b": 2, "a": 1}]') is None
    (True, True)
"""

from __future__ import annotations

import json
from typing import NamedTuple, Optional

from ..json_schema.fragments import json_text
from ..json_schema.unique_items import UniquePlan, canonical_text

# Modes: what the next byte may be.
VALUE, VALUE_OR_END, STRING, STRING_ESCAPE, NUMBER, LITERAL, AFTER, KEY, KEY_OR_END, KEY_STRING, KEY_ESCAPE, COLON, END = range(13)
_SPACE = frozenset(b" \t\n\r")
_NUMBER = frozenset(b"0123456789.eE+-")
_LITERALS = {ord("t"): b"rue", ord("f"): b"alse", ord("n"): b"ull"}
STRING_MODES = frozenset({STRING, STRING_ESCAPE, KEY_STRING, KEY_ESCAPE})


class _Reject(Exception):
    pass


class Frame(NamedTuple):
    """An open array or object."""

    array: bool
    location: tuple  # the schemas that apply to it (UniquePlan)
    unique: bool
    index: int = 0  # arrays: the current item
    seen: frozenset = frozenset()  # unique arrays: the canonical items so far
    start: int = -1  # unique arrays: where the current item began (absolute offset), -1 between items
    values: Optional[frozenset] = None  # unique arrays of few values: (canonical, value) pairs
    key: Optional[str] = None  # objects: the current member's name


class ItemScan:
    """The scan of a JSON text so far; see the module docstring."""

    __slots__ = ("plan", "stack", "mode", "pending", "text", "base", "position", "key_bytes")

    def __init__(self, plan: UniquePlan, stack: tuple, mode: int, pending: bytes, text: bytes, base: int,
                 position: int, key_bytes: bytes) -> None:
        self.plan = plan
        self.stack = stack
        self.mode = mode
        self.pending = pending  # LITERAL: the bytes still to come
        self.text = text  # bytes from `base` on, while an item of a unique array is open
        self.base = base
        self.position = position  # bytes read so far
        self.key_bytes = key_bytes  # KEY_STRING: the key so far, quotes included

    @classmethod
    def start(cls, plan: UniquePlan) -> "ItemScan":
        return cls(plan, (), VALUE, b"", b"", 0, 0, b"")

    @property
    def guarded(self) -> bool:
        """Whether some open array must keep its items unique (otherwise nothing is checked)."""
        return any(frame.unique for frame in self.stack)

    def innermost_unique(self) -> Optional[Frame]:
        for frame in reversed(self.stack):
            if frame.unique:
                return frame
        return None

    def direct_string_item(self) -> bool:
        """Whether the text is inside a string that is itself an item of a unique array."""
        return self.mode in (STRING, STRING_ESCAPE) and bool(self.stack) and self.stack[-1].unique and self.stack[-1].start >= 0

    def current_item(self) -> bytes:
        """The open item's bytes so far in the innermost array, if it is unique (else ``b""``)."""
        top = self.stack[-1] if self.stack else None
        if top is None or not top.array or top.start < 0:
            return b""
        return self.text[top.start - self.base:]

    def pending_duplicate(self) -> bool:
        """Whether the innermost unique array's open item would repeat an earlier item if it ended
        as soon as it can: a number ending here, a string at its closing quote, a literal already
        there, a container closed here. Where the grammar allows nothing else, no continuation is left."""
        depth = len(self.stack) - 1
        while depth >= 0 and not self.stack[depth].unique:
            depth -= 1
        if depth < 0:
            return False
        unique = self.stack[depth]
        if unique.start < 0 or not unique.seen:
            return False
        ending = {NUMBER: b"", STRING: b'"', LITERAL: self.pending, AFTER: b"", VALUE_OR_END: b"", KEY_OR_END: b""}.get(self.mode)
        if ending is None:
            return False
        closers = bytes(0x5D if frame.array else 0x7D for frame in reversed(self.stack[depth + 1 :]))
        try:
            return canonical_text(self.text[unique.start - self.base :] + ending + closers) in unique.seen
        except ValueError:  # an incomplete number ("1e"), a partial character
            return False

    def advance(self, data: bytes) -> "Optional[ItemScan]":
        """The scan after ``data``, or ``None`` if ``data`` repeats an item (see the module docstring)."""
        base = self.base if self.text else self.position
        state = ItemScan(self.plan, self.stack, self.mode, self.pending, self.text + data, base, self.position,
                         self.key_bytes)
        try:
            for byte in data:
                state._byte(byte)
        except _Reject:
            return None
        starts = [frame.start for frame in state.stack if frame.unique and frame.start >= 0]
        keep = min(starts) if starts else state.position  # only the open unique items' bytes are kept
        state.text, state.base = state.text[keep - state.base:], keep
        return state

    # -- one byte ------------------------------------------------------------------------------
    def _byte(self, byte: int) -> None:
        mode = self.mode
        if mode == STRING:
            if byte == 0x5C:
                self.mode = STRING_ESCAPE
            elif byte == 0x22:
                self.position += 1
                self._end_value()
                self._check_prefix()
                return
        elif mode == STRING_ESCAPE:
            self.mode = STRING
        elif mode == NUMBER:
            if byte not in _NUMBER:
                self._end_value()
                self._byte(byte)  # the byte after the number: read it in AFTER
                return
        elif mode == LITERAL:
            self.pending = self.pending[1:]
            if not self.pending:
                self.position += 1
                self._end_value()
                self._check_prefix()
                return
        elif mode in (KEY_STRING, KEY_ESCAPE):
            self.key_bytes += bytes([byte])
            if mode == KEY_ESCAPE:
                self.mode = KEY_STRING
            elif byte == 0x5C:
                self.mode = KEY_ESCAPE
            elif byte == 0x22:
                self._set_key(json_key(self.key_bytes))
                self.mode = COLON
        elif byte in _SPACE:
            pass
        elif mode in (VALUE, VALUE_OR_END):
            if byte == 0x5D and mode == VALUE_OR_END:
                self._close()
            else:
                self._start_value(byte)
        elif mode == AFTER:
            if byte == 0x2C:
                self._next_member()
            else:  # "]" or "}"
                self._close()
        elif mode in (KEY, KEY_OR_END):
            if byte == 0x7D:
                self._close()
            else:  # the opening quote
                self.mode, self.key_bytes = KEY_STRING, b'"'
        elif mode == COLON:
            self.mode = VALUE
        self.position += 1
        self._check_prefix()

    def _start_value(self, byte: int) -> None:
        stack = self.stack
        top = stack[-1] if stack else None
        if top is not None and top.unique and top.array:
            stack = stack[:-1] + (top._replace(start=self.position),)
        location = self._location()
        if byte == 0x7B:
            stack += (Frame(False, location, False),)
            self.mode = KEY_OR_END
        elif byte == 0x5B:
            values = self.plan.item_values(location, 0) if self.plan.is_unique(location) else None
            stack += (Frame(True, location, self.plan.is_unique(location), values=values),)
            self.mode = VALUE_OR_END
        elif byte == 0x22:
            self.mode = STRING
        elif byte in _LITERALS:
            self.mode, self.pending = LITERAL, _LITERALS[byte]
        else:
            self.mode = NUMBER
        self.stack = stack

    def _location(self) -> tuple:
        """The schemas of the value starting now."""
        if not self.stack:
            return self.plan.root
        top = self.stack[-1]
        return self.plan.child(top.location, index=top.index) if top.array else self.plan.child(top.location, key=top.key)

    def _end_value(self) -> None:
        """A value ended (``position``: just past it): an item of a unique array is checked."""
        self.mode = AFTER if self.stack else END
        if not self.stack:
            return
        top = self.stack[-1]
        if not top.unique or top.start < 0:
            return
        item = canonical_text(self.text[top.start - self.base : self.position - self.base])
        if item in top.seen:
            raise _Reject
        self.stack = self.stack[:-1] + (top._replace(seen=top.seen | {item}, start=-1),)

    def _next_member(self) -> None:
        top = self.stack[-1]
        if not top.array:
            self.mode = KEY
            return
        if top.values is not None and all(c in top.seen for c, _ in top.values):
            raise _Reject  # every value the items can take is used: no further item
        values = top.values
        if top.unique and values is not None:  # prefixItems may differ per item: look again
            values = self.plan.item_values(top.location, top.index + 1)
        self.stack = self.stack[:-1] + (top._replace(index=top.index + 1, values=values),)
        self.mode = VALUE

    def _close(self) -> None:
        self.stack = self.stack[:-1]
        self.position += 1
        self._end_value()
        self.position -= 1  # _byte counts the closing byte

    def _set_key(self, key: str) -> None:
        top = self.stack[-1]
        self.stack = self.stack[:-1] + (top._replace(key=key),)

    def _check_prefix(self) -> None:
        """In a unique array of few values, the open item must still be able to become an unused one."""
        top = self.stack[-1] if self.stack else None
        if top is None or top.values is None or top.start < 0:
            return
        item = self.text[top.start - self.base : self.position - self.base]
        if not any(c not in top.seen and spelled(v).startswith(item) for c, v in top.values):
            raise _Reject


def spelled(value: object) -> bytes:
    """How the grammar spells an ``enum``/``const`` scalar."""
    return json_text(value).encode()


def json_key(data: bytes) -> str:
    """A member name from its quoted JSON spelling (a broken one reads as itself: the grammar decides)."""
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
