"""Which rules of a grammar can finish: the productive rules (those with a finite derivation).

A grammar whose start rule cannot finish has no finite sentence: a walk through it never
completes. The textbook fixpoint decides it: a rule is productive when one of its alternatives
holds only terminals and productive rules; ``x?``, ``x*`` and an empty alternative are
productive whatever ``x`` is, ``x+`` only when ``x`` is.

Rules are written in a small expression form, shared with the Lark reader of
:mod:`pse_processors.compiler.finiteness`: ``True`` (a terminal, or anything that may be
absent), ``False`` (a terminal that matches no string), a rule name, ``("seq", parts)``,
``("alt", parts)`` or ``("opt", (part,))`` (a part that may be absent, kept for what it reaches). The Lark writer (:mod:`.lark_emitter`) gives the form of the compiler's own
rules as it writes them (:func:`~.rules.to_lark` keeps it in ``RuleSet.written``): no fragment is
read twice.

Example:
    >>> rules = {"start": "a", "a": ("seq", (True, "a")), "b": ("alt", (True, "b"))}
    >>> sorted(productive(rules))
    ['b']
    >>> blocking_cycles("start", rules, productive(rules))
    [['a']]
"""

from __future__ import annotations

from typing import Any, Mapping, Union


Expr = Union[bool, str, tuple]


def productive(rules: Mapping[str, Expr]) -> set:
    """The names of the rules in ``rules`` that have a finite derivation.

    A name that is not a rule counts as productive (an imported terminal, say): only what is
    known to be unproductive is reported."""
    done: set = set()
    pending = list(reversed(list(rules)))  # callees are mostly defined after callers: fewer passes
    changed = True
    while changed:
        changed = False
        still = []
        for name in pending:
            if _finishes(rules[name], done, rules):
                done.add(name)
                changed = True
            else:
                still.append(name)
        pending = still
    return done


def _finishes(expr: Expr, done: set, rules: Mapping[str, Expr]) -> bool:
    if isinstance(expr, bool):
        return expr
    if isinstance(expr, str):
        return expr in done or expr not in rules
    kind, parts = expr
    if kind == "seq":
        return all(_finishes(part, done, rules) for part in parts)
    return kind == "opt" or any(_finishes(part, done, rules) for part in parts)


def blockers(expr: Expr, done: set, rules: Mapping[str, Expr]) -> set:
    """The unproductive rule names (and ``False`` for an empty terminal) that keep ``expr`` from finishing."""
    if isinstance(expr, bool):
        return set() if expr else {False}
    if isinstance(expr, str):
        return set() if expr in done or expr not in rules else {expr}
    kind, parts = expr
    found: set = set()
    if kind == "opt":
        return found
    for part in parts:
        if kind == "alt" or not _finishes(part, done, rules):
            found |= blockers(part, done, rules)
    return found


def references(expr: Expr) -> set:
    """Every rule name ``expr`` mentions, optional or not."""
    if isinstance(expr, bool):
        return set()
    if isinstance(expr, str):
        return {expr}
    found: set = set()
    for part in expr[1]:
        found |= references(part)
    return found


def reachable(start: str, rules: Mapping[str, Any]) -> list:
    """The rules reachable from ``start`` (itself included), in breadth-first order."""
    seen = {start}
    order = [start]
    for name in order:
        for callee in sorted(references(rules[name])):
            if callee in rules and callee not in seen:
                seen.add(callee)
                order.append(callee)
    return order


def blocking_cycles(start: str, rules: Mapping[str, Expr], done: set) -> list:
    """The cycles of unproductive rules that keep ``start`` from finishing: each a sorted list of
    names (a strongly connected component of the "needs" graph), in the order met from ``start``."""
    graph = {}
    order = [start] if start not in done else []
    for name in order:  # the unproductive rules that start needs, transitively
        graph[name] = sorted(n for n in blockers(rules[name], done, rules) if n is not False)
        order.extend(n for n in graph[name] if n not in graph and n not in order)
    return [sorted(c) for c in _components(order, graph) if len(c) > 1 or c[0] in graph[c[0]]]


def empty_terminal_users(start: str, rules: Mapping[str, Expr], done: set) -> list:
    """The unproductive rules that ``start`` needs and that are blocked by an empty terminal."""
    found = []
    order = [start] if start not in done else []
    for name in order:
        blocked = blockers(rules[name], done, rules)
        if False in blocked:
            found.append(name)
        order.extend(n for n in sorted(blocked - {False}) if n not in order)
    return found


def _components(names: list, graph: Mapping[str, list]) -> list:
    """Tarjan's strongly connected components of ``graph`` restricted to ``names`` (iterative)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    found: list = []
    for root in names:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                found.append(component)
    found.reverse()  # Tarjan emits callees first; report in the order met from start
    return found


#: The name of the root among the rules (no rule of the compiler's is called so).
ROOT = "start"


def unfinished(exprs: Mapping[str, Expr]) -> tuple:
    """``(the root finishes, the rules that never finish, the cycles that block the root)`` of the
    compiler's rules in expression form (``rules.written[2]``, which :func:`~.rules.to_lark`
    records while it writes them; the root is :data:`ROOT`)."""
    done = productive(exprs)
    stuck = [name for name in exprs if name not in done and name != ROOT]
    return ROOT in done, stuck, blocking_cycles(ROOT, exprs, done)


def no_finite_instance(refs: list) -> str:
    """The message for recursive references (their JSON pointers) that can never end."""
    quoted = ", ".join(repr(ref) for ref in refs)
    if len(refs) == 1:
        return (f"no JSON value satisfies this schema: the recursive schema {quoted} has no finite instance "
                f"(every instance of it must contain another instance of {quoted})")
    return (f"no JSON value satisfies this schema: the recursive schemas {quoted} have no finite instance "
            "(every instance of each must contain an instance of one of them)")
