"""Build FailureBench MJCF models from the installed MetaWorld XMLs plus our additions.

MetaWorld's stock XMLs include ``../scene/basic_scene.xml`` etc. and MuJoCo resolves every
relative file against the directory of the *main* file.  We therefore write the generated
model into ``<tmp>/sawyer_xyz/`` next to symlinks ``<tmp>/{scene,objects,textures}`` that
point into the installed MetaWorld asset tree, so nothing of MetaWorld is copied into FARM.
Our own geometry (boundary lines, vase) and the twin camera live in ``assets/*.xml``
(``mujocoinclude`` snippets, included by absolute path at the end of the stock ``<worldbody>``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import metaworld

from failurebench_sim.atomic import write_text

METAWORLD_ASSETS = Path(metaworld.__file__).parent / "assets"
ASSET_DIR = Path(__file__).parent / "assets"
_LINKED = ("scene", "objects", "textures")
_tree: Path | None = None


class ModelXMLError(RuntimeError):
    """Raised when a FailureBench model XML cannot be generated."""


def _asset_tree() -> Path:
    """Per-process temp dir mirroring MetaWorld's asset layout (removed at exit)."""
    global _tree
    if _tree is None or not _tree.exists():
        root = Path(tempfile.mkdtemp(prefix="failurebench_"))
        for name in _LINKED:
            os.symlink(METAWORLD_ASSETS / name, root / name)
        (root / "sawyer_xyz").mkdir()
        atexit.register(shutil.rmtree, root, True)
        _tree = root
    return _tree


def build_model_xml(stock: str, addition: str, edits: tuple[tuple[str, str], ...] = ()) -> str:
    """Return the path of ``sawyer_xyz/<stock>`` with ``assets/<addition>`` included.

    Args:
        stock: file name under MetaWorld's ``assets/sawyer_xyz`` (e.g. ``sawyer_push_v3.xml``).
        addition: file name under our ``assets`` directory.
        edits: exact (old, new) text replacements applied to the stock XML; each ``old``
            must occur in it.
    """
    src, extra, camera = (
        METAWORLD_ASSETS / "sawyer_xyz" / stock,
        ASSET_DIR / addition,
        ASSET_DIR / "camera.xml",
    )
    for path in (src, extra, camera):
        if not path.is_file():
            raise ModelXMLError(f"model file not found: {path}")
    text = src.read_text()
    for old, new in edits:
        if old not in text:
            raise ModelXMLError(f"{src} does not contain {old!r}")
        text = text.replace(old, new)
    if text.count("</worldbody>") != 1:
        raise ModelXMLError(f"{src} must contain exactly one </worldbody>")
    includes = "".join(f'  <include file="{p}"/>\n' for p in (camera, extra))
    text = text.replace("</worldbody>", includes + "    </worldbody>")
    out = _asset_tree() / "sawyer_xyz" / f"fb_{Path(addition).stem}.xml"
    if not out.exists() or out.read_text() != text:
        write_text(out, text)
    return str(out)
