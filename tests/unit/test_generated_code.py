"""gen/ is exactly what scripts/gen_protos.sh makes from protos/ (never edited by hand)."""
import filecmp
import os
import subprocess
import sys

from core.settings import PROJECT_ROOT


def test_generated_code_is_up_to_date(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run([str(PROJECT_ROOT / "scripts" / "gen_protos.sh"), str(tmp_path)], check=True, env=env)
    fresh, committed = tmp_path / "shoprank" / "v1", PROJECT_ROOT / "gen" / "shoprank" / "v1"
    names = sorted(p.name for p in fresh.iterdir() if p.suffix in (".py", ".pyi"))
    assert names == sorted(p.name for p in committed.iterdir() if p.suffix in (".py", ".pyi"))
    match, mismatch, errors = filecmp.cmpfiles(fresh, committed, names, shallow=False)
    assert not mismatch and not errors, f"regenerate with `make protos`: {mismatch + errors}"
