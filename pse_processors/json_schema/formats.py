"""Regexes for ``format`` values, over the JSON spelling of a string's contents.

Each regex accepts a subset of the format's definition (RFC 3339 dates and times, RFC 5321
addresses, RFC 1123 host names, RFC 4122 UUIDs, RFC 3986 URIs), chosen so that no accepted
string is rejected by a strict validator:

- dates never use February 29 (leap years are not tracked) and times never a leap second;
- ``T`` and ``Z`` are upper case; times carry an offset (``Z`` or ``+hh:mm``);
- host names have at most 4 labels of at most 63 characters (so at most 255 bytes... and
  253 is checked by the label count times length: 4 x 63 + 3 = 255 is cut to 3 long labels);
- e-mail addresses are ``dot-atom@hostname``; URIs use only unreserved characters,
  percent-escapes and sub-delimiters, with an optional ``//host[:port]`` authority.

Standard formats that are not enforced (``regex``, ``iri``, ``idn-hostname``...) are refused by
name (``UnsupportedSchemaError``). A format that no JSON Schema draft or OpenAPI defines
(``"topic"``, ``"path"``...) is an annotation by default (``SchemaOptions.unknown_formats``):
validators cannot check it, so a schema's valid instances are the same with or without it.
OpenAPI's numeric formats ``int32``/``int64`` become ranges, ``float``/``double`` (and draft 3's
``utc-millisec``) hold for every JSON number.
"""

from __future__ import annotations

from typing import Optional

_D = "[0-9]"
_DAY_MONTH = (
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)"
    "|(?:0[13578]|1[02])-31)"
)
DATE = f"{_D}{{4}}-{_DAY_MONTH}"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = f"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.{_D}+)?{_OFFSET}"
DATE_TIME = f"{DATE}T{TIME}"
_DUR_TIME = f"T(?:{_D}+H(?:{_D}+M(?:{_D}+S)?)?|{_D}+M(?:{_D}+S)?|{_D}+S)"
_DUR_DATE = f"(?:{_D}+Y(?:{_D}+M(?:{_D}+D)?)?|{_D}+M(?:{_D}+D)?|{_D}+D)"
DURATION = f"P(?:{_DUR_DATE}(?:{_DUR_TIME})?|{_DUR_TIME}|{_D}+W)"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SHORT_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,20}[A-Za-z0-9])?"
HOSTNAME = f"{_LABEL}(?:\\.{_SHORT_LABEL}){{0,3}}"
_ATOM = "[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+"
EMAIL = f"{_ATOM}(?:\\.{_ATOM}){{0,3}}@{_SHORT_LABEL}(?:\\.{_SHORT_LABEL}){{1,3}}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = f"{_OCTET}(?:\\.{_OCTET}){{3}}"
_H16 = "[0-9a-fA-F]{1,4}"
IPV6 = (
    "(?:"
    f"(?:{_H16}:){{7}}{_H16}"
    f"|::(?:{_H16}:){{0,5}}{_H16}"
    f"|{_H16}::(?:{_H16}:){{0,4}}{_H16}"
    f"|(?:{_H16}:){{1}}{_H16}::(?:{_H16}:){{0,3}}{_H16}"
    f"|(?:{_H16}:){{2}}{_H16}::(?:{_H16}:){{0,2}}{_H16}"
    f"|(?:{_H16}:){{3}}{_H16}::(?:{_H16}:){{0,1}}{_H16}"
    f"|(?:{_H16}:){{4}}{_H16}::{_H16}"
    f"|(?:{_H16}:){{0,5}}{_H16}::"
    "|::"
    ")"
)
UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_SEGMENT_NC = "(?:[A-Za-z0-9._~!$&'()*+,;=@-]|%[0-9A-Fa-f]{2})"  # no colon (first relative segment)
_QUERY = f"(?:{_PCHAR}|[/?])*"
_AUTHORITY = f"(?:{_PCHAR.replace(':@', '')}+@)?(?:{HOSTNAME}|{IPV4})(?::[0-9]{{1,5}})?"
_PATH_ABEMPTY = f"(?:/{_PCHAR}*)*"
_TAIL = f"(?:\\?{_QUERY})?(?:#{_QUERY})?"
URI = (
    f"[A-Za-z][A-Za-z0-9+.-]*:"
    f"(?://{_AUTHORITY}{_PATH_ABEMPTY}|/(?:{_PCHAR}+{_PATH_ABEMPTY})?|{_PCHAR}+{_PATH_ABEMPTY}|)"
    f"{_TAIL}"
)
_RELATIVE = (
    f"(?://{_AUTHORITY}{_PATH_ABEMPTY}|/(?:{_PCHAR}+{_PATH_ABEMPTY})?|{_SEGMENT_NC}+{_PATH_ABEMPTY}|)"
    f"{_TAIL}"
)
URI_REFERENCE = f"(?:{URI}|{_RELATIVE})"
# OpenAPI "byte": base64 (RFC 4648, padded, standard alphabet).
BASE64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"

STRING_FORMATS = {
    "date-time": DATE_TIME,
    "date": DATE,
    "time": TIME,
    "duration": DURATION,
    "email": EMAIL,
    "hostname": HOSTNAME,
    "ipv4": IPV4,
    "ipv6": IPV6,
    "uuid": UUID,
    "uri": URI,
    "uri-reference": URI_REFERENCE,
    "byte": BASE64,
    # draft 3's names for hostname and ipv4 (validators check them as such)
    "host-name": HOSTNAME,
    "ip-address": IPV4,
}
# OpenAPI string formats that assert nothing about the text ("binary": any octets, "password": a UI hint).
ANY_STRING_FORMATS = frozenset({"binary", "password"})

# OpenAPI numeric formats: (minimum, maximum) for integers; None: no constraint.
NUMERIC_FORMATS: dict[str, Optional[tuple[int, int]]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "float": None,
    "double": None,
    "utc-millisec": None,  # draft 3: milliseconds since the epoch, any number
}

# Every format a JSON Schema draft (3 to 2020-12) or OpenAPI defines. A validator may check
# these, so one that is not enforced is refused; any other format is unknown to validators.
STANDARD_FORMATS = frozenset({
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
    "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
    "relative-json-pointer", "regex", "color", "style", "phone", "utc-millisec", "host-name", "ip-address",
    "int32", "int64", "float", "double", "byte", "binary", "password",
})
