"""Test-wide set-up: importing segdet first makes torch's OpenMP threads wait without spinning
(see segdet/__init__.py), also in the subprocesses the tool tests start."""
import segdet  # noqa: F401
