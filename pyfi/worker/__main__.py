"""``python -m pyfi.worker``: the entry an agent spawns (same as ``pyfi worker start``)."""
from pyfi.cli import cli

if __name__ == "__main__":
    cli.main(args=["worker", "start", *__import__("sys").argv[1:]], prog_name="pyfi worker")
