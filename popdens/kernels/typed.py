"""Constants that numba types as plain ``int64`` / ``bool`` (not as literals).

A Python literal passed to a compiled function (``f(x, 0, False)``), or a variable that
starts as one (``n = 0`` before a loop that adds to it), makes numba compile the callee
for the literal's own type (``Literal[int](0)``) as well as for ``int64``: the same code
twice or three times, for nothing. Compiled callers pass these instead (numba types
NumPy scalars by their dtype). Measured on the cold test suite: 61 such duplicate
compilations, 134 s of compile time.
"""

import numpy as np

__all__ = ["INT0", "INT1", "FALSE", "TRUE"]

INT0 = np.int64(0)
INT1 = np.int64(1)
FALSE = np.bool_(False)
TRUE = np.bool_(True)
