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
    ts_names = sorted(p.name for p in (tmp_path / "ts" / "shoprank" / "v1").iterdir())
    assert ts_names == sorted(p.name for p in (PROJECT_ROOT / "gen" / "ts" / "shoprank" / "v1").iterdir())
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "ts" / "shoprank" / "v1", PROJECT_ROOT / "gen" / "ts" / "shoprank" / "v1",
                                               ts_names, shallow=False)
    assert not mismatch and not errors, f"regenerate with `make protos`: {mismatch + errors}"


BUF = PROJECT_ROOT / "tools" / "node" / "node_modules" / ".bin" / "buf"


def test_protos_pass_buf_lint():
    """STANDARD style (per-RPC request and response messages, enum prefixes) and every element documented."""
    out = subprocess.run([str(BUF), "lint"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_buf_breaking_catches_a_removed_field(tmp_path):
    """What `make check-breaking` runs, against a copy of protos/ with one field removed."""
    import shutil

    shutil.copytree(PROJECT_ROOT / "protos", tmp_path / "protos")
    shutil.copy(PROJECT_ROOT / "buf.yaml", tmp_path / "buf.yaml")
    same = subprocess.run([str(BUF), "breaking", "--against", str(PROJECT_ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert same.returncode == 0, same.stdout + same.stderr
    scoring = tmp_path / "protos" / "shoprank" / "v1" / "scoring.proto"
    scoring.write_text(scoring.read_text().replace("  bool explain = 4;\n", "", 1))
    out = subprocess.run([str(BUF), "breaking", "--against", str(PROJECT_ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "explain" in out.stdout + out.stderr
