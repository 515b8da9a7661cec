"""The py_trees_js renderer's files (its JS, CSS and jointjs dependencies), read from the
installed py-trees-js package.

py-trees-js ships them only inside a compiled Qt resource module
(``py_trees_js/resources.py``, made by ``pyrcc5`` from ``resources.qrc``), not as plain files.
Qt's own QFile reads them back, so the viewer serves exactly the renderer that pip
installed instead of a copy kept in this repository.

The resource module is loaded from its file, not through ``import py_trees_js``: the
package's ``__init__`` also imports its Qt WebEngine demo viewer, which needs display
libraries that a robot or a CI machine may not have. Only PyQt5.QtCore (a dependency of
py-trees-js) is needed here.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Dict

from common.errors import InputError

#: The folder inside the resource bundle that holds the renderer (``:/js/...``).
RESOURCE_ROOT = ":/js"

CONTENT_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
}

_REINSTALL = "reinstall it into the project's venv: pip install py-trees-js==0.7.0"


def package_dir() -> str:
    """The installed py_trees_js package folder (without importing the package)."""
    spec = importlib.util.find_spec("py_trees_js")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("py_trees_js (the tree renderer) is not installed; " + _REINSTALL)
    return list(spec.submodule_search_locations)[0]


def load_renderer_files() -> Dict[str, bytes]:
    """Return {'js/py_trees-0.6.js': b'...', 'js/jointjs/...': ...} from the installed package.

    Raises InputError naming the fix when the package or PyQt5 is missing or broken.
    """
    resources_path = os.path.join(package_dir(), "resources.py")
    if not os.path.isfile(resources_path):
        raise InputError("py_trees_js has no %s; %s" % (resources_path, _REINSTALL))
    try:
        from PyQt5 import QtCore
    except ImportError as error:
        raise InputError("PyQt5.QtCore (needed to read py_trees_js's bundled renderer) "
                         "does not import (%s); %s" % (error, _REINSTALL))
    spec = importlib.util.spec_from_file_location("_py_trees_js_resources", resources_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers the bundle with Qt (qInitResources)
    files: Dict[str, bytes] = {}
    walker = QtCore.QDirIterator(RESOURCE_ROOT, QtCore.QDirIterator.Subdirectories)
    while walker.hasNext():
        path = walker.next()
        handle = QtCore.QFile(path)
        if QtCore.QFileInfo(path).isDir() or not handle.open(QtCore.QIODevice.ReadOnly):
            continue
        files[path[2:]] = bytes(handle.readAll())  # ':/js/x.js' -> 'js/x.js'
        handle.close()
    if not any(name.startswith("js/py_trees") and name.endswith(".js") for name in files):
        raise InputError("no py_trees renderer (js/py_trees-*.js) in %s; %s"
                         % (resources_path, _REINSTALL))
    return files


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
