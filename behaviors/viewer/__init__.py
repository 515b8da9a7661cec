"""The live behaviour-tree viewer (``py-trees-tree-viewer``): a stdlib web server that shows
patrol_node's tree snapshots with the py_trees_js renderer. See server.py."""
from __future__ import annotations
