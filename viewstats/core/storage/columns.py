"""An engine's Arrow answer as numpy columns: what `Storage.query_columns` returns on both
backends, so that a large answer never becomes a Python object per row (strings aside).

The server backend imports this module only when it first reads columns: numpy and pyarrow cost
a process ~40 MB of RSS, which a writer has no use for (a server-mode consumer loads neither,
architecture §5). chDB loads both with its first connection anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from viewstats.core.storage import StorageError

# Asked for with every Arrow answer, after the caller's settings, since the conversion below
# depends on them: String and FixedString as Arrow strings (not binary); LowCardinality as a
# dictionary, whose strings pyarrow makes once each rather than once a row (1e6 rows of 50
# hosts: 10 ms, not 180); and no compression, which an answer in the same process or on a
# local network only pays for (lz4 costs chDB ~0.03 us a row to write and pyarrow as much to
# read).
ARROW_SETTINGS: dict[str, str | int] = {
    "output_format_arrow_string_as_string": 1,
    "output_format_arrow_fixed_string_as_fixed_byte_array": 0,
    "output_format_arrow_low_cardinality_as_dictionary": 1,
    "output_format_arrow_compression_method": "none"}


def arrow_file_columns(data: bytes) -> list[npt.NDArray[Any]]:
    """The columns of an answer in the Arrow IPC file format (FORMAT Arrow); none when the
    statement gave no answer at all (not a SELECT)."""
    if not data:
        return []
    try:
        # `data` stays referenced by the table's buffers, so the arrays may share its memory.
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    except pa.ArrowException as exc:
        raise StorageError(f"unreadable Arrow answer: {exc}") from exc
    return table_columns(table)


def table_columns(table: pa.Table) -> list[npt.NDArray[Any]]:
    """One numpy array per column of `table`, in its order.

    Integers widen to int64 or uint64 (by sign), strings are object arrays of str, and the
    rest is what pyarrow's `to_numpy` gives: Date datetime64[D], DateTime its epoch seconds
    (the engine sends UInt32, so uint64), DateTime64 datetime64 in its unit, Enum its number.
    A NULL raises: it has no integer, and an array of None would pass for strings.
    """
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if column.null_count:
            raise StorageError(f"column {name!r} holds NULL, which query_columns cannot give")
        try:
            columns.append(_array(column))
        except pa.ArrowException as exc:  # e.g. a String that is not UTF-8
            raise StorageError(f"column {name!r}: {exc}") from exc
    return columns


def _array(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    array: npt.NDArray[Any] = column.to_numpy()
    if pa.types.is_signed_integer(column.type):
        return array.astype(np.int64)  # a copy: writable, and owning its memory
    if pa.types.is_unsigned_integer(column.type):
        return array.astype(np.uint64)
    # A zero-copy view is read-only; the caller gets arrays it may change, as with a list.
    return array if array.flags.writeable else array.copy()
