"""farm_bringup's tests import the package from the source tree (and hand it to children)."""

import os
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1])
if SRC not in sys.path:
    sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
