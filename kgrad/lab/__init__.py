"""The laboratory: reference models (`zoo`), small offline data sets (`data`)
and the experiments that `kgrad demo`, `compare` and `train` run."""
