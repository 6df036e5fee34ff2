"""``python -m pyfi.worker``: the entry an agent spawns (the same as ``pyfi worker start``)."""
from pyfi.worker.command import main

if __name__ == "__main__":
    main()
