"""What machine a measurement ran on: CPU, cores, OS and the versions that matter.

Used by the header of `kgrad demo`'s markdown and by the benchmarks, so that
every figure the project publishes names the machine it came from.

Example:
    ```python
    from kgrad.lab.machine import machine, machine_info

    machine_info()["cores"]  # 2
    print(machine())  # "AMD EPYC, 2 cores, Linux 6.1, Python 3.11.7, ..."
    ```
"""

import os
import platform


def machine_info():
    """The machine as a dict.

    Returns:
        A dict with `cpu` (model name), `cores` (usable by this process), `os`,
        `python`, `tensorflow` and `keras` (versions).
    """
    import keras
    import tensorflow as tf

    return {
        "cpu": _cpu_name(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def load_average():
    """The 1, 5 and 15 minute load averages as text, e.g. `"1.1, 1.2, 1.3"`."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def machine():
    """The machine in one line, e.g. for the header of a results file."""
    info = machine_info()
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['os']}, Python "
        f"{info['python']}, TensorFlow {info['tensorflow']}, Keras {info['keras']}"
    )


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
