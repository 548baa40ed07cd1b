"""An object's members laid out: declared members in each accepted order (``orders.py``), extra
members (``additionalProperties``, ``patternProperties``) after them; under
``property_order="required"`` (the default) also before them (``{"$schema": ..., "name": ...}``:
models write a document's ``$schema`` or ``id`` first); under ``"any"`` also between them.

Extra members may come anywhere exactly: their keys differ from every declared name, and nothing
counts them (an object with ``maxProperties`` and declared members generates no extras). Writing
"any number of extras" after each member keeps the size linear: one copy of the extras per
member in the regex output, one shared rule in the grammar output. It is not the default: on
llguidance it made the masks of a large schema with open objects (``additional_properties="spec"``)
about 1.45x slower (MaskBench-dev's o46283, 2,092 masks), for 3 more dev schemas passing.

A mixin of the compiler (``compiler._Compiler``): it uses the compiler's other methods.
"""

from __future__ import annotations

from typing import Optional

from . import fragments as fx
from .fragments import Fragment


class MembersMixin:
    def _extras_anywhere(self, extra: Fragment, high: Optional[int], has_members: bool) -> bool:
        """Whether extra members go between the declared ones too (not only after them)."""
        return extra is not None and high is None and has_members and self.options.property_order == "any"  # type: ignore[attr-defined]

    def _extras_first(self, extra: Fragment, high: Optional[int], has_members: bool) -> bool:
        """Whether extra members may also come before the declared ones (``"required"``)."""
        return extra is not None and high is None and has_members and self.options.property_order == "required"  # type: ignore[attr-defined]

    def _extras_loop(self, extra: str, sep: str) -> str:
        """Any number of extra members, each behind ``sep`` (a rule in grammar mode: written once)."""
        loop = fx.repeat(sep + extra, 0, None)
        return loop if self.rules is None else self.rules.shared(loop, "extras")  # type: ignore[attr-defined]

    def _marked_object(self, layouts: list, extras: list, sep: str, high: Optional[int]) -> str:
        """``{`` MARK then every member behind a separator, linear in size (in each accepted
        order of the members, ``layouts``; see ``orders.py``).

        The byte automaton drops the separator of the first member present (see
        ``byte_automaton.FIRST_MEMBER_MARK``): writing "no comma before the first present
        member" in a plain regex needs one alternative per possible first member, quadratic in
        the number of optional properties."""
        extra = fx.alternation(k + self.key_sep + v for k, v in extras) if extras else None  # type: ignore[attr-defined]
        anywhere = self._extras_anywhere(extra, high, bool(layouts[0]))
        loop = self._extras_loop(extra, sep) if anywhere else ""  # type: ignore[arg-type]
        orders = []
        for members in layouts:
            parts = []
            for member, is_required in members:
                parts.append(sep + member + loop if is_required else fx.optional(sep + member + loop))
            orders.append("".join(parts))
        if anywhere:
            return r"\{" + fx.FIRST_MEMBER_MARK + loop + (fx.alternation(orders) or "") + r"\}"
        tail = fx.repeat(sep + extra, 0, high) if extra is not None and high != 0 else ""
        lead = tail if self._extras_first(extra, high, bool(layouts[0])) else ""
        return r"\{" + fx.FIRST_MEMBER_MARK + lead + (fx.alternation(orders) or "") + tail + r"\}"

    def _object_body(self, members: list, extras: list, sep: str, must_have: bool, high: Optional[int] = None) -> Fragment:
        """Members in one order with extra members after them (or also between them); non-empty.
        ``high`` bounds free members (a repeated key only lowers the count, so the bound stays exact)."""
        extra = fx.alternation(k + self.key_sep + v for k, v in extras) if extras else None  # type: ignore[attr-defined]
        if high == 0:
            extra = None
        if self._extras_anywhere(extra, high, bool(members)):
            loop = self._extras_loop(extra, sep)  # type: ignore[arg-type]
            members = [(member + loop, is_required) for member, is_required in members]
            every = self._member_suffixes(members, sep)[0] if self.rules is not None else self._members(members, 0, False, sep)  # type: ignore[attr-defined]
            return fx.alternation([self._members_first(members, 0, sep), extra + loop + every])  # type: ignore[operator]
        more = "" if extra is None else fx.repeat(sep + extra, 0, None if high is None else high - 1)
        parts: list[Fragment] = []
        if members:
            first = self._members_first(members, 0, sep)
            if first is not None:
                parts.append(first + more)
                if self._extras_first(extra, high, True):  # extras, then at least one declared member
                    parts.append(extra + self._extras_loop(extra, sep) + sep + first + more)  # type: ignore[operator]
        if extra is not None and not any(req for _, req in members):
            parts.append(extra + more)
        return fx.alternation(parts)

    def _members_first(self, members: list, i: int, sep: str, suffixes: Optional[list] = None) -> Fragment:
        """Members from ``i`` on with at least one present; the first has no separator."""
        if i == len(members):
            return None
        member, is_required = members[i]
        if self.rules is not None:  # grammar mode: one rule per suffix, each naming the next: linear
            suffixes = suffixes or self._member_suffixes(members, sep)
            rest = suffixes[i + 1]
        else:
            rest = self._members(members, i + 1, False, sep)
        taken = member + rest
        if is_required:
            return taken
        later = self._members_first(members, i + 1, sep, suffixes)
        if self.rules is not None and later is not None:  # grammar mode: a rule, not one nesting level per member
            later = self.rules.shared(later, "first")
        return fx.alternation([taken, later])

    def _member_suffixes(self, members: list, sep: str) -> list:
        """Grammar mode: ``[i]`` is a hole for the members from ``i`` on, each behind ``sep``
        (``""`` past the end); each rule holds one member and the hole of the next suffix, so
        the rules of an object with n optional properties hold n members, not n²/2."""
        suffixes = [""] * (len(members) + 1)
        for i in range(len(members) - 1, -1, -1):
            member, is_required = members[i]
            piece = sep + member if is_required else fx.optional(sep + member)
            suffixes[i] = self.rules.shared(piece + suffixes[i + 1], "members")  # type: ignore[union-attr]
        return suffixes

    def _members(self, members: list, i: int, first: bool, sep: str = "") -> str:
        if i == len(members):
            return ""
        member, is_required = members[i]
        lead = "" if first else sep
        if not first and not is_required:  # independent of what follows: linear size
            return fx.optional(lead + member) + self._members(members, i + 1, False, sep)
        taken = lead + member + self._members(members, i + 1, False, sep)
        if is_required:
            return taken
        skipped = self._members(members, i + 1, first, sep)
        return fx.alternation([taken, skipped]) if skipped else fx.optional(taken)
