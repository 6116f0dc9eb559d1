"""tools/*.py are scripts, not modules: tests load one and call its main() in this process (which
saves the interpreter start-up, importing torch)."""
import importlib.util
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def tool_main(tool: str, *args) -> int:
    """`tools/<tool>.py`'s main() on the arguments (as strings)."""
    spec = importlib.util.spec_from_file_location(f"{tool}_tool", TOOLS / f"{tool}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in args])
