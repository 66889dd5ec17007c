"""`keep_alive` values as Ollama reads them: JSON numbers are seconds, strings are Go durations.

Ollama passes Go's own error texts to clients (`time: invalid duration "abc"`), so this is a faithful
port of time.ParseDuration rather than a looser regex.
"""

from __future__ import annotations

import math

FOREVER = math.inf  # Ollama stores math.MaxInt64 ns (about 292 years); infinity is the honest equivalent.
_MAX_SECONDS = (2**63 - 1) / 1e9  # the longest Go time.Duration

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class DurationError(ValueError):
    pass


def parse_go_duration(text: str) -> float:
    """Seconds from a Go duration string such as `5m`, `1h30m`, `-1s`, `0`, `.5s`."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    s = text
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise DurationError(f"time: invalid duration {quoted}")
    total = 0.0
    while s:
        i = 0
        while i < len(s) and s[i].isdigit():
            i += 1
        whole, s = s[:i], s[i:]
        frac = ""
        if s.startswith("."):
            j = 1
            while j < len(s) and s[j].isdigit():
                j += 1
            frac, s = s[1:j], s[j:]
        if not whole and not frac:
            raise DurationError(f"time: invalid duration {quoted}")
        j = 0
        while j < len(s) and s[j] != "." and not s[j].isdigit():
            j += 1
        unit, s = s[:j], s[j:]
        if not unit:
            raise DurationError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise DurationError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(f"{whole or '0'}.{frac or '0'}") * _UNITS[unit]
        if total > _MAX_SECONDS:  # Go's ParseDuration overflows int64 nanoseconds
            raise DurationError(f"time: invalid duration {quoted}")
    return -total if negative else total


def keep_alive_seconds(value: object) -> float:
    """Decode a request's `keep_alive` (never None here); negative means forever, as in Ollama. A number of
    seconds past Go's longest duration (about 292 years) is forever too: Ollama's float-to-int64 conversion
    of it is undefined, and a timer that long never fires."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DurationError(f"Unsupported type: '{_go_type_name(value)}'")
    seconds = _seconds(value) if not isinstance(value, str) else parse_go_duration(value)
    return FOREVER if seconds < 0 or seconds > _MAX_SECONDS else seconds


def _seconds(number: int | float) -> float:
    try:
        return float(number)
    except OverflowError:  # an integer past float64
        return FOREVER


def default_keep_alive(setting: str) -> float:
    """OLLAMA_KEEP_ALIVE's value: a Go duration or integer seconds; negative means forever; default 5m."""
    raw = setting.strip()
    if not raw:
        return 300.0
    try:
        seconds = parse_go_duration(raw)
    except DurationError:
        try:
            seconds = _seconds(int(raw))
        except ValueError:
            return 300.0
    return FOREVER if seconds < 0 or seconds > _MAX_SECONDS else seconds


def _go_type_name(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return type(value).__name__


def format_go_duration(ns: int) -> str:
    """Go's time.Duration.String of a count of nanoseconds: 0s, 850ns, 12.5µs, 3.000123ms, 1.5s, 2m3.4s, 1h0m0s."""
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 6)}ms"
    seconds, hours_minutes = _fraction(ns % 60_000_000_000, 9) + "s", ns // 60_000_000_000
    if hours_minutes == 0:
        return sign + seconds
    hours, minutes = divmod(hours_minutes, 60)
    return f"{sign}{hours}h{minutes}m{seconds}" if hours else f"{sign}{minutes}m{seconds}"


def _fraction(value: int, digits: int) -> str:
    """`value / 10**digits` with the fraction's trailing zeros (and a bare point) dropped, as Go's fmtFrac."""
    whole, fraction = divmod(value, 10**digits)
    decimals = f"{fraction:0{digits}d}".rstrip("0")
    return f"{whole}.{decimals}" if decimals else str(whole)
