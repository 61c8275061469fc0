"""TFRecord checksums (masked CRC-32C) of many records at once, with numpy.

TensorBoard checks each record in pure Python, byte by byte (about 30% of
reading a long run). Here the CRC's linearity does the work: records of one
length are checked together as a reference record xor the contributions of
the bytes where each differs from it (kgrad's records differ only in their
step, time and floats), looked up in tables of each byte's contribution at
each distance from the end.

Example:

>>> import numpy as np
>>> data = np.frombuffer(b"123456789", np.uint8)
>>> hex(int(masked_crc32c(data, [0], [9])[0]))  # CRC-32C 0xe3069283, masked
'0xc78ab0e5'
"""

import numpy as np

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_MASK_DELTA = 0xA282EAD8
_UINT32 = 0xFFFFFFFF


def _crc_table():
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1)
    return table.astype(np.uint32)


_TABLE = _crc_table()


class _PositionTables:
    """CRC-32C contributions of a byte at each distance from a record's end.

    The CRC is linear over GF(2): the state after a record is the state
    its first byte would reach from the initial value through all the zero
    bytes, xor the contribution of each byte. `byte[k][b]` is what byte `b`
    contributes when `k` bytes follow it, `initial[k]` what the initial value
    becomes after `k` bytes (one row more); both grow on demand, for records
    up to `LIMIT` bytes.
    """

    LIMIT = 1 << 16  # longer records (figures) are checked byte by byte

    def __init__(self):
        self.byte = _TABLE[None, :].copy()
        after_one = int(_TABLE[_UINT32 & 0xFF]) ^ (_UINT32 >> 8)
        self.initial = np.asarray([_UINT32, after_one], dtype=np.uint32)

    def grow(self, length):
        have = len(self.byte)
        if length <= have:
            return
        rows = [self.byte]
        last = self.byte[-1]
        initial = [int(self.initial[-1])]
        for _ in range(length - have):
            last = _TABLE[last & 0xFF] ^ (last >> 8)
            rows.append(last[None, :])
            state = initial[-1]
            initial.append(int(_TABLE[state & 0xFF]) ^ (state >> 8))
        self.byte = np.concatenate(rows)
        self.initial = np.concatenate(
            [self.initial, np.asarray(initial[1:], dtype=np.uint32)]
        )


_TABLES = _PositionTables()
_GATHER_BYTES = 1 << 22  # bytes of records gathered at once


def masked_crc32c(data, starts, lengths):
    """The masked CRC-32C (TFRecord's checksum) of many byte ranges at once.

    Args:
        data: The bytes, a 1-D `uint8` numpy array.
        starts: Start offset of each range.
        lengths: Length of each range.

    Returns:
        A `uint32` array: the masked CRC of each range.

    Example:

    >>> data = np.frombuffer(b"123456789", np.uint8)
    >>> hex(int(masked_crc32c(data, [0], [9])[0]))  # 0xe3069283, masked
    '0xc78ab0e5'
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint32)
    for length in np.unique(lengths).tolist():
        group = np.flatnonzero(lengths == length)
        if length == 0:
            out[group] = 0
        elif length > _TABLES.LIMIT:
            out[group] = [_crc_bytewise(data, s, length) for s in starts[group]]
        else:
            out[group] = _crc_same_length(data, starts[group], length)
    crc = out ^ np.uint32(_UINT32)
    crc[lengths == 0] = 0
    return ((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA)


def _crc_same_length(data, starts, length):
    """Unmasked CRC-32C state (before the final inversion) of equal ranges.

    Records of one length differ in few bytes (kgrad's differ in their step,
    time and floats): each is checked as the first record of its chunk xor
    the contributions of the bytes where it differs from it, found eight
    bytes at a time.
    """
    _TABLES.grow(length)
    width = -(-length // 8) * 8
    reference = data[starts[0] : starts[0] + length]
    base = np.bitwise_xor.reduce(_TABLES.byte[np.arange(length)[::-1], reference])
    reference = np.concatenate([reference, np.zeros(width - length, np.uint8)])
    state = np.empty(len(starts), dtype=np.uint32)
    rows = max(1, _GATHER_BYTES // width)
    for first in range(0, len(starts), rows):
        diff = _records(data, starts[first : first + rows], length, width)
        diff ^= reference
        diff[:, length:] = 0
        row, word = np.nonzero(diff.view(np.uint64))
        row = np.repeat(row, 8)
        column = (word[:, None] * 8 + np.arange(8)).reshape(-1)
        values = diff[row, column]
        distance = np.maximum(length - 1 - column, 0)  # beyond the end: value 0
        chunk_state = np.full(len(diff), base, dtype=np.uint32)
        np.bitwise_xor.at(chunk_state, row, _TABLES.byte[distance, values])
        state[first : first + rows] = chunk_state
    return state ^ _TABLES.initial[length]


def _records(data, starts, length, width):
    """A writable `(len(starts), width)` copy of the ranges (zero-padded)."""
    steps = np.diff(starts)
    end = int(starts[-1]) + width
    if len(starts) > 1 and end <= len(data) and np.all(steps == steps[0]):
        view = np.lib.stride_tricks.as_strided(
            data[starts[0] :], (len(starts), width), (int(steps[0]), 1), writeable=False
        )
        return view.copy()
    index = np.minimum(starts[:, None] + np.arange(width), len(data) - 1)
    return data[index]


def _crc_bytewise(data, start, length):
    state = _UINT32
    for byte in data[start : start + length].tolist():
        state = int(_TABLE[(state ^ byte) & 0xFF]) ^ (state >> 8)
    return state
