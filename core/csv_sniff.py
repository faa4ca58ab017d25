"""Which delimiter a CSV uses, read from a bounded prefix in linear time (comma, semicolon, tab or pipe)."""

from __future__ import annotations

DELIMITERS = (",", ";", "\t", "|")  # in order of preference when two read equally well
SNIFF_CHARS = 8 * 1024  # the prefix delimiter detection reads, whatever the file's size
SNIFF_LINES = 50


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV, read from a bounded prefix in linear time.

    Each candidate counts its occurrences outside quotes on every complete line of the prefix; the one
    that appears in the header and splits the data lines most consistently wins (ties: comma first).
    `csv.Sniffer` is not used: its regular expressions backtrack, and a crafted 64 KB line kept it busy
    for seconds.
    """
    sample = text[:SNIFF_CHARS]
    cut = len(text) > SNIFF_CHARS
    best, best_score = ",", None
    for delimiter in DELIMITERS:
        counts = _delimiter_counts(sample, delimiter, cut)
        if not counts or counts[0] == 0:
            continue
        rows = counts[1:] or counts
        usual = max(set(rows), key=rows.count)
        score = (sum(c == usual for c in rows) / len(rows), counts[0])
        if best_score is None or score > best_score:
            best, best_score = delimiter, score
    return best


def _delimiter_counts(sample: str, delimiter: str, cut: bool) -> list[int]:
    """Per non-blank line of `sample` (at most SNIFF_LINES), how often `delimiter` splits it, reading
    double quotes as CSV does: a quote opens a field only at its start, and `""` inside one is a quote.
    The last line is left out when the sample was cut from a longer text, unless it is the only one."""
    if '"' not in sample:
        lines = sample.split("\n")[: SNIFF_LINES + 1]
        if cut and len(lines) > 1:
            lines.pop()
        return [line.count(delimiter) for line in lines[:SNIFF_LINES] if line.strip()]
    counts: list[int] = []
    found, in_quotes, field_start, content = 0, False, True, False
    i, n = 0, len(sample)
    while i < n and len(counts) < SNIFF_LINES:
        ch = sample[i]
        i += 1
        if in_quotes:
            if ch == '"':
                if i < n and sample[i] == '"':
                    i += 1  # an escaped quote inside the field
                else:
                    in_quotes = False
            continue
        if ch == "\n":
            if content:
                counts.append(found)
            found, field_start, content = 0, True, False
        elif ch == delimiter:
            found, field_start, content = found + 1, True, True
        elif ch == '"' and field_start:
            in_quotes, field_start, content = True, False, True
        elif not ch.isspace():
            field_start, content = False, True
    if content and (not cut or not counts) and len(counts) < SNIFF_LINES:
        counts.append(found)  # the last line: complete, or the only (partial) one there is
    return counts
