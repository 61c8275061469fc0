"""Reads event files back fast, up to any damage. No TensorFlow.

An event file is a sequence of TFRecords (a length, its CRC, the data, its
CRC), each record an `Event` protocol buffer. Reading it the obvious way (one
Python CRC per record, one `make_ndarray` per scalar) costs about 15 s for a
20,000-step run of 24 scalars. Here:

- the CRC-32C of every record is computed at once with numpy
  (`kgrad.analysis.crc`);
- the scalars of a `Summary` are read as a template: the first time a
  summary of a given shape is seen, the byte offset of each scalar's float32
  is found and checked by parsing; every later summary whose bytes equal the
  template outside those floats is read with one numpy gather
  (`ScalarTemplates`). kgrad writes the scalars of a step exactly that way
  (`kgrad.monitor.log.event_writer.ScalarEncoder`), and so does TensorBoard's
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

from kgrad.analysis.crc import masked_crc32c


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
    bad_header = masked_crc32c(array, headers, np.full(len(headers), 8)) != header_crc
    first_bad = _first(bad_header)
    data_crc = _stored_crcs(array, starts[:first_bad] + lengths[:first_bad])
    bad_data = masked_crc32c(array, starts[:first_bad], lengths[:first_bad]) != data_crc
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
