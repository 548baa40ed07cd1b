"""The byte automaton's sentinel characters (U+10FFFD-U+10FFFF), cut out of a built table exactly.

:class:`~pse_processors.matchers.byte_automaton.ByteAutomaton` builds ``U+10FFFE (regex)
U+10FFFF`` with outlines-core and uses U+10FFFD as the JSON Schema compiler's object mark.
None of the three may ever be generated, and nothing else may be lost with them: the other
characters of plane 16 (lead byte 0xF4) stay exactly as the regex allows them. Here:

:func:`exclude_sentinel_chars` removes every path that spells one of the three characters
(``F4 8F BF`` then ``BD``, ``BE`` or ``BF``), the intersection with "no sentinel character"
(JSON Schema regexes never hold one raw; a user's regex may, through ``.`` or a class), then
the transitions into what can no longer be completed: the states partway into the trailing
sentinel.
"""

from __future__ import annotations

import numpy as np

_LEAD, _SECOND, _THIRD = 0xF4, 0x8F, 0xBF  # the first three bytes of U+10FFFD, U+10FFFE, U+10FFFF
_LAST = np.array([0xBD, 0xBE, 0xBF])


SPARE_ROWS = 32  # rows a table is built with past its states, for the copies made here


def exclude_sentinel_chars(next_state: np.ndarray, accepting: np.ndarray) -> tuple:
    """``(next_state, accepting)`` with no path that reads U+10FFFD, U+10FFFE or U+10FFFF.

    ``next_state`` has one row per state of ``accepting``, and may be followed by unused rows
    (all -1, ``SPARE_ROWS`` of them from :meth:`ByteAutomaton.build`): the copies go there
    instead of into a new table (copying a large table cost more than the rest of this).

    The intersection with a 4-state tracker of "how far into F4 8F BF", built only where it
    differs from the table: the states that read a sentinel's last byte after ``F4 8F BF``
    (``reading``), and the states on the way there, get a copy entered only along those bytes,
    whose sentinel transitions are cut; the originals keep serving every other path (in a
    user's ``.``, the state after ``F4 8F BF`` may also be the one after ``F4 8F BE``). Then
    copies from which nothing accepting can be reached are cut off: outlines-core keeps only
    states that reach its final state, so those are the only dead ones. Column reads only: no
    pass over the whole table (the states partway into the sentinel are a handful).

    Example:
        >>> t = np.full((5, 256), -1, dtype=np.int32)
        >>> t[0, 0xF4], t[1, 0x8F], t[2, 0xBF], t[3, 0xBF], t[3, 0x80], t[4, 0x61] = 1, 2, 3, 4, 4, 0
        >>> table, accepting = exclude_sentinel_chars(t, np.array([True, False, False, False, True]))
        >>> path = [table[0, 0xF4]]; path += [table[path[-1], 0x8F]]; path += [table[path[-1], 0xBF]]
        >>> int(table[path[-1], 0xBF]), int(table[path[-1], 0x80]), int(table[3, 0xBF])
        (-1, 4, 4)
    """
    n = accepting.shape[0]
    first_all = _targets(next_state, np.arange(n), _LEAD)
    second_all = _targets(next_state, first_all, _SECOND)
    third_all = _targets(next_state, second_all, _THIRD)
    reading = third_all[(next_state[third_all][:, _LAST] >= 0).any(axis=1)]
    if not reading.size:
        return next_state[:n], accepting
    second = second_all[np.isin(next_state[second_all, _THIRD], reading)]
    first = first_all[np.isin(next_state[first_all, _SECOND], second)]
    levels = (first, second, reading)
    offsets = np.cumsum([n, first.size, second.size, reading.size])
    if next_state.shape[0] >= offsets[-1]:
        table = next_state[: offsets[-1]]
        for states, start in zip(levels, offsets[:-1]):
            table[start : start + states.size] = next_state[states]
    else:
        table = np.concatenate([next_state[:n]] + [next_state[states] for states in levels])
    copy_of = []
    for states, offset in zip(levels, offsets):
        index = np.full(n, -1, np.int64)
        index[states] = offset + np.arange(states.size)
        copy_of.append(index)
    # Which rows read which byte into the next level's copies: F4 from anywhere.
    for rows, byte, level in ((slice(None), _LEAD, 0), (slice(offsets[0], offsets[1]), _SECOND, 1),
                              (slice(offsets[1], offsets[2]), _THIRD, 2)):
        column = table[rows, byte]
        moved = column >= 0
        moved[moved] = copy_of[level][column[moved]] >= 0
        column[moved] = copy_of[level][column[moved]]
        table[rows, byte] = column
    table[offsets[2]:][:, _LAST] = -1
    grown = np.concatenate([accepting, np.zeros(table.shape[0] - n, dtype=bool)])  # mid-character: never complete
    _cut_dead_copies(table, grown, n)
    return table, grown


def _targets(next_state: np.ndarray, states: np.ndarray, byte: int) -> np.ndarray:
    found = next_state[states, byte]
    return np.unique(found[found >= 0])


def _cut_dead_copies(table: np.ndarray, accepting: np.ndarray, n: int) -> None:
    """Cut the transitions into copies (rows from ``n``) that reach nothing accepting, in place.

    Only the three redirected columns and the copies' own rows can lead into a copy."""
    copies = table[n:]
    dead = np.zeros(table.shape[0], dtype=bool)
    while True:
        valid = copies >= 0
        alive = (valid & ~dead[np.maximum(copies, 0)]).any(axis=1) | accepting[n:]
        newly = ~alive & ~dead[n:]
        if not newly.any():
            break
        dead[n:] |= newly
    if not dead.any():
        return
    for byte in (_LEAD, _SECOND, _THIRD):
        column = table[:, byte]
        column[(column >= 0) & dead[np.maximum(column, 0)]] = -1
    copies[(copies >= 0) & dead[np.maximum(copies, 0)]] = -1
