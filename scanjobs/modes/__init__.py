"""Job modes: copy, download and analyse."""
