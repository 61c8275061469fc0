"""kgrad.analysis.events: checksums, byte templates and damage, against TensorBoard."""

import numpy as np
import tensorflow as tf
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as tensorboard_crc

from kgrad.analysis import crc, report
from kgrad.analysis import events as reader
from kgrad.monitor.log import event_writer, summaries


def test_crc32c_matches_tensorboards_on_ranges_of_every_kind():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 100_000).astype(np.uint8)
    ranges = [(0, 0), (5, 1), (7, 9), (100, 1000), (1100, 1000), (2100, 1000)]
    ranges += [(3, 70_000), (99_990, 10)]  # past the tables: byte by byte
    ranges += [(int(s), 37) for s in rng.integers(0, 90_000, 50)]
    got = crc.masked_crc32c(data, [s for s, _ in ranges], [n for _, n in ranges])
    raw = data.tobytes()
    expected = [tensorboard_crc.masked_crc32c(raw[s : s + n]) for s, n in ranges]
    assert got.tolist() == expected


def _mixed_run(run_dir):
    """kgrad's scalars, a text, and scalars written by tf.summary (Keras's way)."""
    writer = event_writer.RunWriter(str(run_dir))
    writer.write(1, [summaries.run_info_value({"model": "m", "variables": []})])
    for step in range(1, 41):
        scalars = [("grad_norm/global", step / 3), ("grad_norm/m/d/kernel", -step)]
        if step % 7 == 0:  # another layout now and then
            scalars.append(("dead_units/m/d", 0.25))
        writer.write(step, [], scalars)
    writer.close()
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        for step in range(41, 44):
            tf.summary.scalar("grad_norm/global", step * 1.5, step=step)
            tf.summary.scalar("grad_norm/m/d/kernel", np.float64(step), step=step)
    tf.summary.flush()


def test_read_file_gives_tensorboards_values(tmp_path, events):
    _mixed_run(tmp_path)
    tb = events(tmp_path)
    scalars = {}
    for path in sorted(tmp_path.iterdir()):
        scan = reader.read_file(str(path))
        assert scan.damage is None
        for tag, (index, values) in scan.scalars().items():
            steps = [scan.steps[i] for i in index]
            scalars.setdefault(tag, []).extend(zip(steps, values.tolist(), strict=True))
    assert set(scalars) == {t for t in tb if not t.startswith("kgrad/")}
    for tag, series in scalars.items():
        assert [s for s, _ in series] == [s for s, _ in tb[tag]], tag
        np.testing.assert_allclose([v for _, v in series], [v for _, v in tb[tag]])
    assert [s for s, _ in scalars["dead_units/m/d"]] == [7, 14, 21, 28, 35]


def test_a_flipped_bit_stops_reading_at_that_record(tmp_path):
    writer = event_writer.RunWriter(str(tmp_path))
    for step in range(1, 11):
        writer.write(step, [], [("grad_norm/global", float(step))])
    writer.close()
    (path,) = tmp_path.iterdir()
    data = bytearray(path.read_bytes())
    starts, lengths, _ = reader.split_records(bytes(data))
    sixth = int(starts[6])  # record 0 is the file version: step 6
    data[sixth + 20] ^= 0x10
    path.write_bytes(bytes(data))
    scan = reader.read_file(str(path))
    assert scan.steps == [1, 2, 3, 4, 5]
    assert scan.damage["byte"] == sixth - 12
    assert scan.damage["reason"] == "record data fails its CRC check"
    scalars, run_info = report.load_run(tmp_path)
    assert scalars["grad_norm/global"] == [(s, float(s)) for s in range(1, 6)]
    assert run_info["damaged_files"] == [scan.damage]
