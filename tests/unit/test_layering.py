"""The layering of DESIGN.md: core imports neither ray nor diffusers; only
cluster/ imports ray; plain classes import without ray."""
import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).parents[2] / "adascope_ray"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_only_cluster_imports_ray():
    offenders = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                 if "ray" in imported_modules(p) and p.parent.name != "cluster"]
    assert offenders == []


def test_core_imports_no_ray_no_diffusers_at_runtime():
    code = ("import sys, adascope_ray.core.sde, adascope_ray.core.signals, adascope_ray.core.window, "
            "adascope_ray.core.advantages, adascope_ray.core.loss, adascope_ray.core.cost, adascope_ray.core.paired; "
            "bad = [m for m in ('ray', 'diffusers', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_sampler_and_learner_import_without_ray():
    code = "import sys, adascope_ray.rollout, adascope_ray.learner, adascope_ray.rewards; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
