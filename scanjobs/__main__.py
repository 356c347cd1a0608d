"""`python -m scanjobs`."""

from scanjobs.cli import main_entry

main_entry()
