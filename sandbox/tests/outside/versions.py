"""Prints `name==version` for every requirement pinned in requirements.txt, as
installed in this venv: the outside-client tests hold the pins against it."""
import importlib.metadata
import pathlib

here = pathlib.Path(__file__).parent
for line in (here / "requirements.txt").read_text().splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    name = line.split("==")[0]
    print(f"{name}=={importlib.metadata.version(name)}")
