"""Structure in free text as one llguidance grammar: a main Lark grammar and a sub-grammar per inner
constraint (``@g1``, ``@g2``...), passed to llguidance as one top-level grammar JSON.

- a marker's text is a string literal, its special tokens ``<[id]>``;
- free text before a text marker is a lazy lexeme ``hd[lazy]: /(?s:.*)MARKER/`` (it ends at the
  marker's first occurrence, as the byte automaton's piece does); other free text is a greedy
  lexeme; both exclude the forbidden texts with llguidance's ``&`` and ``~``;
- repetitions and alternatives are Lark's. llguidance's own ``max_tokens`` is never used: on a
  lazy lexeme it cuts the lexeme and skips the marker (measured); the thinking budget is ours
  (``matchers/budget.py``).

Example:
    >>> from pse_processors.constraints.structure import Seq, Lit, FreeText, Capture
    >>> main, _ = structure_grammar(Seq((Lit((151667,)), Capture("reasoning", FreeText(forbid=(b"</think>",))), Lit((151668, b"\\n")))), [])
    >>> print(main)
    start: <[151667]> TEXT0? <[151668]> "\\n"
    TEXT0: /[^\\x{100000}-\\x{10FFFF}]+/ & ~/(?s:.*)<\\/think>(?s:.*)/
"""

from __future__ import annotations

import json

from ..constraints.structure import Alt, Capture, FreeText, Inner, Lit, Node, Rep, Seq

#: llguidance's option of every grammar here: allow every spelling, as the byte automaton does.
NO_FORCING = '%llguidance {"no_forcing": true}\n'


_META = set("\\.+*?()|[]{}^$#&-~/")
#: Any character but plane 16 (the byte automaton's free text leaves out its lead byte F4, so this does too).
_CHAR = "[^\\x{100000}-\\x{10FFFF}]"
_CONTROL = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _regex_text(data: bytes) -> str:
    """``data`` (a marker's UTF-8 text) as a literal inside a Lark ``/.../`` regex (Rust syntax)."""
    out = []
    for ch in data.decode("utf-8"):
        if ch in _META:
            out.append("\\" + ch)
        elif ch in _CONTROL:
            out.append(_CONTROL[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _excluding(forbid: tuple) -> str:
    return "".join(f" & ~/(?s:.*){_regex_text(f)}(?s:.*)/" for f in forbid)


def structure_grammar(root: Node, inner_larks: list[str]) -> tuple[str, list[str]]:
    """``(main Lark grammar, sub-grammars)``: ``inner_larks`` are the inner constraints' grammars, in
    the order of their first :class:`Inner` node (each distinct inner text is one sub-grammar)."""
    rules: list[str] = []
    names: dict[str, str] = {}
    inner_ids: dict[str, int] = {}

    def named(prefix: str, body: str) -> str:
        found = names.get(body)
        if found is None:
            found = names[body] = f"{prefix}{len(names)}"
            rules.append(f"{found}{body}")
        return found

    def emit(node: Node) -> str:
        if isinstance(node, Lit):
            return " ".join(f"<[{u}]>" if isinstance(u, int) else json.dumps(u.decode("utf-8")) for u in node.units)
        if isinstance(node, FreeText):
            if node.until is not None:  # lazy: it ends at the first occurrence of `until`
                return named("hd", f"[lazy]: /{_CHAR}*{_regex_text(node.until)}/{_excluding(node.forbid)}")
            first = f"{_CHAR}+" if not node.first_not else f"[^{''.join(_class(b) for b in node.first_not)}\\x{{100000}}-\\x{{10FFFF}}]{_CHAR}*"
            return named("TEXT", f": /{first}/{_excluding(node.forbid)}") + "?"  # llguidance lexemes are not empty
        if isinstance(node, Inner):
            if node.text not in inner_ids:
                inner_ids[node.text] = len(inner_ids) + 1
            return f"@g{inner_ids[node.text]}"
        if isinstance(node, Capture):
            return emit(node.item)
        if isinstance(node, Seq):
            return " ".join(part for part in (emit(item) for item in node.items) if part) or '""'
        if isinstance(node, Alt):
            return "(" + " | ".join(emit(item) for item in node.items) + ")"
        if isinstance(node, Rep):
            body = f"({emit(node.item)})"
            if node.high is None:
                return f"{body}{{{node.low},}}" if node.low else f"{body}*"
            if node.high == 0:
                return ""
            return f"{body}{{{node.low},{node.high}}}"
        raise TypeError(f"not a structure node: {node!r}")

    start = emit(root)
    return "\n".join([f"start: {start}", *rules]), inner_larks


def _class(byte: int) -> str:
    """One byte of ``first_not`` (ASCII) inside a ``[^...]`` class."""
    return f"\\x{byte:02x}"


def top_level_grammar(main: str, inner_larks: list[str]) -> str:
    """The top-level grammar JSON llguidance takes: ``main`` first, then ``g1``, ``g2``..."""
    grammars = [{"name": "main", "lark_grammar": NO_FORCING + main}]
    grammars += [{"name": f"g{i + 1}", "lark_grammar": NO_FORCING + lark} for i, lark in enumerate(inner_larks)]
    return json.dumps({"grammars": grammars})


def inner_order(root: Node) -> list[Inner]:
    """The distinct inner constraints, in the order :func:`structure_grammar` numbers them."""
    seen: dict[str, Inner] = {}
    for node in root.walk():
        if isinstance(node, Inner) and node.text not in seen:
            seen[node.text] = node
    return list(seen.values())


__all__ = ["NO_FORCING", "inner_order", "structure_grammar", "top_level_grammar"]
