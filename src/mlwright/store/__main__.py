"""The serving store's writer process: ``python -m mlwright.store STORE FLUSH_SECONDS FLUSH_ROWS
[COUNT]`` (see :mod:`mlwright.store.process`)."""

import sys

from mlwright.store.process import main

sys.exit(main(sys.argv[1:]))
