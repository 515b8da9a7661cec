"""The one error type for bad input (perception, the tree, the simulator, the CLIs), so each
command-line tool and node can print one clear line instead of a traceback."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input from a user: a file that won't open, a wrong column, an empty folder.

    The message names the input and says how to fix it; command-line tools print it as one
    line and exit non-zero instead of showing a traceback.
    """
