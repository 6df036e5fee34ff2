"""``python -m pyfi.cli``: the same as the ``pyfi`` console script."""
from pyfi.cli import main

main()
