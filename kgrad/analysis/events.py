"""Reads event files back fast, up to any damage. No TensorFlow.

An event file is a sequence of TFRecords (a length, its CRC, the data, its
CRC), each record an `Event` protocol buffer. Reading it the obvious way (one
Python CRC per record, one `make_ndarray` per scalar) costs about 15 s for a
20,000-step run of 24 scalars. Here:

- the CRC-32C of every record is computed at once with numpy, one byte
  position of all records per iteration (`crc32c`);
- the scalars of a `Summary` are read as a template: the first time a
  summary of a given shape is seen, the byte offset of each scalar's float32
  is found and checked by parsing; every later summary whose bytes equal the
  template outside those floats is read with one numpy gather
  (`ScalarTemplates`). kgrad writes the scalars of a step exactly that way
  (`kgrad.monitor.event_writer.ScalarEncoder`), and so does TensorBoard's
  summary writer for a fixed set of tags. Anything else (histograms, text,
  images, another writer's layout) is parsed with TensorBoard's protocol
  buffers.

Reading stops at the first record that fails a check or does not parse; it
is reported as `{"file", "byte", "reason"}`.

Example:

```python
scan = read_file("logs/exp1/train/events.out.tfevents...kgrad")
scan.steps            # one step per event with a summary, in file order
scan.scalars()        # {tag: (event indices, float64 values)}
scan.texts            # [(event index, tag, text)] of the text summaries
scan.damage           # None, or {"file", "byte", "reason"}
```
"""

import struct

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
    becomes after `k` bytes; both grow on demand up to `LIMIT` bytes.
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


def crc32c(data, starts, lengths):
    """The masked CRC-32C (TFRecord's checksum) of many byte ranges at once.

    Args:
        data: The bytes, a 1-D `uint8` numpy array.
        starts: Start offset of each range.
        lengths: Length of each range.

    Returns:
        A `uint32` array: the masked CRC of each range.

    Example:

    >>> data = np.frombuffer(b"123456789", np.uint8)
    >>> hex(int(crc32c(data, [0], [9])[0]))  # 0xe3069283, masked
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


def split_records(data):
    """The records of an event file, checked, up to the first damaged one.

    Args:
        data: The file's bytes.

    Returns:
        `(starts, lengths, damage)`: the data offset and length of each good
        record, and `None` or `(byte, reason)` of the first damaged one.
    """
    starts, lengths, headers = [], [], []
    offset, size, damage = 0, len(data), None
    unpack = struct.Struct("<Q").unpack_from
    while offset < size:
        if size < offset + 12:
            damage = (offset, "the file ends inside a record header")
            break
        length = unpack(data, offset)[0]
        if size < offset + 12 + length + 4:
            damage = (offset, "the file ends inside a record")
            break
        headers.append(offset)
        starts.append(offset + 12)
        lengths.append(length)
        offset += 16 + length
    array = np.frombuffer(data, dtype=np.uint8)
    headers = np.asarray(headers, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    header_crc = _stored_crcs(array, headers + 8)
    bad_header = crc32c(array, headers, np.full(len(headers), 8)) != header_crc
    first_bad = _first(bad_header)
    data_crc = _stored_crcs(array, starts[:first_bad] + lengths[:first_bad])
    bad_data = crc32c(array, starts[:first_bad], lengths[:first_bad]) != data_crc
    first_bad_data = _first(bad_data)
    if first_bad_data < first_bad:
        first_bad, reason = first_bad_data, "record data fails its CRC check"
    else:
        reason = "record header fails its CRC check"
    if first_bad < len(starts):
        damage = (int(headers[first_bad]), reason)
    return starts[:first_bad], lengths[:first_bad], damage


def _stored_crcs(array, offsets):
    picked = array[np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(4)]
    return picked.copy().view("<u4").reshape(-1)


def _first(flags):
    hits = np.flatnonzero(flags)
    return int(hits[0]) if len(hits) else len(flags)


# -- protocol buffer wire format ------------------------------------------------
def _varint(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data, start, end):
    """`(field number, wire type, value or (start, end))` of a message's bytes."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type")
        yield number, wire, value
    if pos != end:
        raise ValueError("a field runs past its message")


_EVENT_STEP, _EVENT_WALL_TIME, _EVENT_SUMMARY = 2, 1, 5
_SUMMARY_VALUE = 1


# -- scalars --------------------------------------------------------------------
def scalar_of(value):
    """The float of a scalar `Summary.Value`, or `None` if it is not one."""
    if value.HasField("tensor"):
        tensor = value.tensor
        if any(dim.size != 1 for dim in tensor.tensor_shape.dim):
            return None
        for field in ("float_val", "double_val", "int_val", "int64_val"):
            items = getattr(tensor, field)
            if len(items) == 1:
                return float(items[0])
        from tensorboard.util import tensor_util  # rare: tensor_content, half

        array = tensor_util.make_ndarray(tensor)
        return float(array.reshape(-1)[0]) if array.size == 1 else None
    if value.HasField("simple_value"):
        return float(value.simple_value)
    return None


def is_scalar(value):
    """Whether a `Summary.Value` is a scalar of the scalars plugin."""
    plugin = value.metadata.plugin_data.plugin_name
    return plugin == "scalars" or (not plugin and value.HasField("simple_value"))


class _Template:
    """The bytes of one summary layout, with its scalars' floats zeroed."""

    def __init__(self, tags, masked, float_index):
        self.tags = tags
        self.masked = masked
        self.float_index = float_index  # (n, 4) byte offsets of each float32
        self.events = []
        self.rows = []


class ScalarTemplates:
    """Reads `Summary` payloads of all-scalar values through byte templates."""

    _MARKER = struct.pack("<f", -1.2345679e-29)

    def __init__(self):
        self._by_length = {}
        self.templates = []

    def read(self, payload, event):
        """Reads the scalars of a summary's bytes for event number `event`.

        Returns:
            Whether the payload matched (or became) a template; if not, the
            caller parses it.
        """
        array = np.frombuffer(payload, dtype=np.uint8)
        for template in self._by_length.get(len(payload), ()):
            masked = array.copy()
            masked[template.float_index] = 0
            if masked.tobytes() == template.masked:
                template.events.append(event)
                template.rows.append(array[template.float_index])
                return True
        template = self._build(payload)
        if template is None:
            return False
        self._by_length.setdefault(len(payload), []).append(template)
        self.templates.append(template)
        template.events.append(event)
        template.rows.append(array[template.float_index])
        return True

    def _build(self, payload):
        from tensorboard.compat.proto import summary_pb2

        tags, offsets = [], []
        for number, wire, span in _fields(payload, 0, len(payload)):
            if number != _SUMMARY_VALUE or wire != 2:
                return None
            value_bytes = payload[span[0] : span[1]]
            value = summary_pb2.Summary.Value.FromString(value_bytes)
            number = scalar_of(value) if is_scalar(value) else None
            if number is None:
                return None
            offset = self._float_offset(value_bytes, value)
            if offset is None:
                return None
            tags.append(value.tag)
            offsets.append(span[0] + offset)
        if not tags:
            return None
        index = np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(4)
        masked = np.frombuffer(payload, dtype=np.uint8).copy()
        masked[index] = 0
        return _Template(tuple(tags), masked.tobytes(), index)

    def _float_offset(self, value_bytes, value):
        """Where the value's float32 is in its bytes, checked by parsing."""
        from tensorboard.compat.proto import summary_pb2

        if value.HasField("tensor"):
            if len(value.tensor.float_val) != 1:
                return None
            needle = b"\x2a\x04" + struct.pack("<f", value.tensor.float_val[0])
            skip = 2
        else:
            needle = b"\x15" + struct.pack("<f", value.simple_value)
            skip = 1
        at = value_bytes.rfind(needle)
        if at < 0:
            return None
        at += skip
        probe = value_bytes[:at] + self._MARKER + value_bytes[at + 4 :]
        changed = summary_pb2.Summary.Value.FromString(probe)
        marker = struct.unpack("<f", self._MARKER)[0]
        if scalar_of(changed) != marker or changed.tag != value.tag:
            return None
        return at


class EventScan:
    """What `read_file` found in one event file.

    Attributes:
        steps: List of the step of each event that has a summary.
        wall_times: List of their wall times.
        texts: `(event index, tag, text)` of every text summary.
        other_scalars: `(event index, tag, value)` of scalars not in templates.
        damage: `None`, or `{"file", "byte", "reason"}`.
    """

    def __init__(self, path):
        self.path = path
        self.steps = []
        self.wall_times = []
        self.texts = []
        self.other_scalars = []
        self.templates = ScalarTemplates()
        self.damage = None

    def scalars(self):
        """`{tag: (event indices, float64 values)}`, in file order."""
        parts = {}
        for template in self.templates.templates:
            events = np.asarray(template.events, dtype=np.int64)
            rows = np.stack(template.rows).reshape(len(events), -1, 4)
            values = rows.copy().view("<f4").reshape(len(events), -1)
            for column, tag in enumerate(template.tags):
                parts.setdefault(tag, []).append((events, values[:, column]))
        for event, tag, value in self.other_scalars:
            parts.setdefault(tag, []).append(
                (np.asarray([event], np.int64), np.asarray([value], np.float32))
            )
        out = {}
        for tag, pieces in parts.items():
            events = np.concatenate([e for e, _ in pieces])
            values = np.concatenate([v for _, v in pieces]).astype(np.float64)
            order = np.argsort(events, kind="stable")
            out[tag] = (events[order], values[order])
        return out


def read_file(path):
    """Reads one event file: steps, scalars and texts, up to any damage.

    Args:
        path: The event file.

    Returns:
        An `EventScan`.
    """
    with open(path, "rb") as file:
        data = file.read()
    scan = EventScan(path)
    starts, lengths, damage = split_records(data)
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        if not _read_event(scan, data, start, start + length):
            damage = (start - 12, "record is not an event")
            break
    if damage is not None:
        scan.damage = {"file": path, "byte": damage[0], "reason": damage[1]}
    return scan


def _read_event(scan, data, start, end):
    """Adds one event to `scan`; returns `False` if it is not an event."""
    try:
        step, wall_time, payloads = 0, 0.0, []
        for number, wire, value in _fields(data, start, end):
            if number == _EVENT_STEP and wire == 0:
                step = value - (1 << 64) if value >= 1 << 63 else value
            elif number == _EVENT_WALL_TIME and wire == 1:
                wall_time = struct.unpack("<d", value)[0]
            elif number == _EVENT_SUMMARY and wire == 2:
                payloads.append(value)
    except (ValueError, IndexError):
        return _parses_as_event(data[start:end]) and _read_parsed(scan, data[start:end])
    if not payloads:
        return True
    event = len(scan.steps)
    scan.steps.append(step)
    scan.wall_times.append(wall_time)
    for first, last in payloads:
        if first == last:  # an empty summary
            continue
        payload = data[first:last]
        if not scan.templates.read(payload, event):
            if not _read_summary(scan, payload, event):
                return False
    return True


def _parses_as_event(record):
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    try:
        event_pb2.Event.FromString(record)
    except DecodeError:
        return False
    return True


def _read_parsed(scan, record):
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event.FromString(record)
    if event.HasField("summary"):
        index = len(scan.steps)
        scan.steps.append(event.step)
        scan.wall_times.append(event.wall_time)
        _read_values(scan, event.summary.value, index)
    return True


def _read_summary(scan, payload, event):
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import summary_pb2

    try:
        summary = summary_pb2.Summary.FromString(payload)
    except DecodeError:
        return False
    _read_values(scan, summary.value, event)
    return True


def _read_values(scan, values, event):
    for value in values:
        if is_scalar(value):
            number = scalar_of(value)
            if number is not None:
                scan.other_scalars.append((event, value.tag, number))
        elif value.metadata.plugin_data.plugin_name == "text":
            scan.texts.append((event, value.tag, _text(value)))


def _text(value):
    strings = value.tensor.string_val
    if strings:
        return strings[0].decode("utf-8", "replace")
    return ""
