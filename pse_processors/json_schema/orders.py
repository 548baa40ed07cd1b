"""Which orders of an object's declared members the compiler accepts (``property_order``).

JSON Schema puts no order on an object's members, but a regex or grammar that accepted every
order of n optional members, each at most once, would need one state per subset of them (2^n).
The compiler therefore accepts a few orders, chosen by :class:`~.options.SchemaOptions`'
``property_order``:

- ``"properties"``: the order of ``properties`` (then required names that ``properties`` does
  not declare, in ``required``'s order);
- ``"required"`` (default): that order; also ``required``'s names first (in their order), then
  the optional members in the order of ``properties``. Models often write an object in the order
  of its ``required`` list when it differs from ``properties`` (sorted, "normalized" schemas).
  In the grammar output at every depth (each member is a rule there, written once however many
  orders name it); in the regex output for the root object only: each order writes every
  member's value again in a regex, so nested objects with two orders each would multiply it (at
  every depth, 11 of MaskBench-dev's 1,094 schemas outgrew the automaton's limits; at the root,
  6). A schema with a nested object whose ``required`` order differs therefore runs on
  llguidance under ``backend="auto"`` (the grammar marks it ``beyond_regex``); ``backend="dfa"``
  accepts the root's second order only.
  Accepting also the first k required names, then the rest (k = 1..8), passed no more MaskBench-dev
  schemas, and the regex output grows with every order (each order writes every member's value
  again, and nested objects multiply), so it is not done;
- ``"any"``: every order, for objects of at most :data:`ANY_ORDER_MAX` declared members; larger
  objects as under ``"required"``; and extra members (``additionalProperties``,
  ``patternProperties``) anywhere between the declared ones (``members.py``), where the other
  policies put them after the declared ones.

Example:
    >>> member_orders(["a", "b", "c"], ["c", "a"], "required")
    [[0, 1, 2], [2, 0, 1]]
    >>> member_orders(["a", "b", "c", "d"], ["d", "b"], "required")
    [[0, 1, 2, 3], [3, 1, 0, 2]]
    >>> member_orders(["a", "b"], ["a", "b"], "required")
    [[0, 1]]
    >>> len(member_orders(["a", "b", "c"], [], "any"))  # every order of a subset is a prefix of these
    6
"""

from __future__ import annotations

import itertools
from typing import Optional

#: The property_order policies.
POLICIES = ("properties", "required", "any")
#: ``"required"`` adds ``required``'s order to objects nested at most this deep (1: the root
#: object) in the regex output; the grammar output adds it at every depth.
REQUIRED_ORDER_DEPTH = 1
#: ``"any"`` lists every order of objects with at most this many declared members (n! orders,
#: whose shared prefixes the grammar and the automaton merge).
ANY_ORDER_MAX = 4


def member_orders(names: list, required: list, policy: str, depth: Optional[int] = 1) -> list:
    """The accepted orders of the declared members ``names``, as lists of indexes, first the
    order of ``names`` (``properties`` order), each order once. ``depth``: the object's nesting
    depth (1 for the root; see :data:`REQUIRED_ORDER_DEPTH`), ``None`` for the grammar output
    (every depth).

    Example:
        >>> member_orders(["a", "b"], ["b"], "required", depth=2), member_orders(["a", "b"], ["b"], "required", None)
        ([[0, 1]], [[0, 1], [1, 0]])
    """
    natural = list(range(len(names)))
    if policy == "any" and 1 < len(names) <= ANY_ORDER_MAX:
        return [list(order) for order in itertools.permutations(natural)]
    orders = [natural]
    if policy == "any" or (policy == "required" and (depth is None or depth <= REQUIRED_ORDER_DEPTH)):
        position = {name: i for i, name in enumerate(names)}
        first = [position[name] for name in dict.fromkeys(required) if name in position]
        by_required = first + [i for i in natural if i not in first]
        if by_required not in orders:
            orders.append(by_required)
    return orders
