"""Which orders of an object's declared members the compiler accepts (``property_order``).

JSON Schema puts no order on an object's members, but a regex or grammar that accepted every
order of n optional members, each at most once, would need one state per subset of them (2^n).
The compiler therefore accepts a few orders, chosen by :class:`~.options.SchemaOptions`'
``property_order``:

- ``"properties"``: the order of ``properties`` (then required names that ``properties`` does
  not declare, in ``required``'s order);
- ``"required"`` (default): that order, or ``required``'s names first, in their order, then the
  optional members in the order of ``properties``. Models often write an object in the order of
  its ``required`` list when it differs from ``properties`` (sorted, "normalized" schemas);
- ``"any"``: every order, for objects of at most :data:`ANY_ORDER_MAX` declared members; larger
  objects as under ``"required"``.

Extra members (``additionalProperties``, ``patternProperties``) come after the declared ones in
every policy.

Example:
    >>> member_orders(["a", "b", "c"], ["c", "a"], "required")
    [[0, 1, 2], [2, 0, 1]]
    >>> member_orders(["a", "b"], ["a", "b"], "required")
    [[0, 1]]
    >>> len(member_orders(["a", "b", "c"], [], "any"))  # every order of a subset is a prefix of these
    6
"""

from __future__ import annotations

import itertools

#: The property_order policies.
POLICIES = ("properties", "required", "any")
#: ``"any"`` lists every order of objects with at most this many declared members (n! orders,
#: whose shared prefixes the grammar and the automaton merge).
ANY_ORDER_MAX = 4


def member_orders(names: list, required: list, policy: str) -> list:
    """The accepted orders of the declared members ``names``, as lists of indexes, first the
    order of ``names`` (``properties`` order), each order once."""
    natural = list(range(len(names)))
    if policy == "any" and 1 < len(names) <= ANY_ORDER_MAX:
        return [list(order) for order in itertools.permutations(natural)]
    orders = [natural]
    if policy in ("required", "any"):
        position = {name: i for i, name in enumerate(names)}
        first = [position[name] for name in dict.fromkeys(required) if name in position]
        by_required = first + [i for i in natural if i not in first]
        if by_required != natural:
            orders.append(by_required)
    return orders
