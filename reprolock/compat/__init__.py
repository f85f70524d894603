"""The compatibility knowledge in ``matrices/``, as typed tables and pure questions.

Only `Matrices` is imported here: a table's module (``compat.gpus``, ``compat.cuda``…) is
imported by whoever needs it, so a command that needs no table (an up-to-date ``lock``)
imports none of them.
"""

from reprolock.compat.matrices import Matrices, load_matrices

__all__ = ["Matrices", "load_matrices"]
