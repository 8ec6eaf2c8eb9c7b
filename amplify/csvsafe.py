"""CSV text that is safe to open in a spreadsheet: every export writes through here.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return is read by
Excel, LibreOffice and Google Sheets as a formula, so a story body like
``=HYPERLINK("http://x","y")`` (or a resharer's handle, which strangers choose) would become
a live link or command. Following OWASP's CSV-injection rule such text gets a leading single
quote, which spreadsheets show as text. Line feed is treated the same way for good measure.

Real numbers (``int``, ``float``, ``Decimal``, numpy numbers) are written as numbers, negative
ones included: a number cannot carry a formula, and a report's ``-3`` must stay summable.
Text that merely looks like a number (``"-3"``) is text and is quoted like any other.

Not ``defusedcsv``: it leaves tab and carriage return alone and rewrites every ``|`` in a
flagged cell to ``\\|``, which changes the data.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from numbers import Number
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: First characters a spreadsheet may take as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def json_default(value: Any) -> Any:
    """For json.dumps: dates as ISO 8601, anything else unknown as its text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def safe_cell(value: Any) -> Any:
    """One cell: empty for None/NaN, numbers as numbers, nested data as JSON text, and any
    text that a spreadsheet would run as a formula prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, Number) and not isinstance(value, complex):
        if isinstance(value, float) and math.isnan(value):
            return ""
        return value
    if isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, list | tuple | dict):
        text = json.dumps(value, default=json_default)
    else:
        text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _write(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return buf.getvalue()


def rows_to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV text with a header row of ``columns``; missing keys become empty cells."""
    return _write(columns, ([row.get(c) for c in columns] for row in rows))


def frame_to_csv(frame: pd.DataFrame) -> str:
    """A DataFrame as CSV text (no index), neutralised like every other export."""
    columns = [str(c) for c in frame.columns]
    values = (
        [None if _is_missing(v) else v for v in record]
        for record in frame.itertuples(index=False, name=None)
    )
    return _write(columns, values)


def _is_missing(value: Any) -> bool:
    # pandas NaT/NA/NaN print as "NaT"/"<NA>"/"nan"; pandas' own to_csv writes them empty.
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):
        return False
