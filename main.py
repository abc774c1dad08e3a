"""ScaleLab: ``python main.py [FILE]`` starts the desktop app;
``python main.py simulate|check|export ...`` runs the headless command line."""
from __future__ import annotations

import sys

from designer.entry import main

if __name__ == "__main__":
    import multiprocessing
    multiprocessing.freeze_support()   # the desktop bundle: a worker of --jobs runs its task here, not the app
    sys.exit(main())
