"""Files that are either whole or absent: written to a temporary file, renamed.

A figure that could not be written (a full disk) must not be left as an empty
or half file: `write_bytes` writes next to the target and renames only once
every byte is on disk, so the target keeps its former content (or stays
absent) when writing fails.

Example:

```python
write_bytes("logs/exp1/gradient_flow.png", png)
```
"""

import os
import tempfile


def write_bytes(path, data):
    """Writes `data` to `path` whole, or raises and leaves `path` as it was.

    Args:
        path: The file to write.
        data: Its bytes.

    Raises:
        OSError: If the bytes cannot be written; no temporary file is left.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            _write_all(file, data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _write_all(file, data):
    file.write(data)
