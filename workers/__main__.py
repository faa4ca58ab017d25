"""`python -m workers`: one worker process."""

import os
import sys

# Temporal's sandbox imports the workflow modules afresh for every run: from the bytecode cache, not by compiling
# their source again each time (3 ms of every run's first workflow task). PYTHONDONTWRITEBYTECODE would leave no
# cache to read, so a worker writes one, as any Python program does by default.
sys.dont_write_bytecode = False

# Before numpy loads: N worker processes x M native threads each would oversubscribe the cores.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

if __name__ == "__main__":
    from core.storage import private_umask

    private_umask()  # a worker started on its own (not by the launcher) writes private files too
    from workers.worker import main

    main()
