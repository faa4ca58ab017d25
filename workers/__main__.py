"""`python -m workers`: one worker process."""

import os
import sys

# Temporal's sandbox imports the workflow modules afresh for every run: from the bytecode cache, not by compiling
# their source again each time (3 ms of every run's first workflow task). PYTHONDONTWRITEBYTECODE would leave no
# cache to read, so a worker writes one, as any Python program does by default.
sys.dont_write_bytecode = False

from ml.child_fit import THREAD_VARS  # noqa: E402  (after the flag above; it imports no numpy)

# Before numpy loads: N worker processes x M native threads each would oversubscribe the cores.
for _var in THREAD_VARS:
    os.environ.setdefault(_var, "1")

if __name__ == "__main__":
    from core.storage import private_umask

    private_umask()  # a worker started on its own (not by the launcher) writes private files too
    from workers.worker import main

    main()
