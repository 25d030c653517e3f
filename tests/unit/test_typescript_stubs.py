"""The TypeScript messages generated from protos/ (gen/ts, protoc-gen-es) compile with tsc and speak the
same wire format as the Python stubs: a RecommendRequest built in TypeScript parses in Python."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from shoprank.v1 import scoring_pb2

NODE = PROJECT_ROOT / "tools" / "node" / "node_modules"
PROGRAM = """
import { create, toBinary } from "@bufbuild/protobuf";
import { PinSchema, RecommendRulesSchema } from "./ts/shoprank/v1/common_pb.js";
import { RecommendRequestSchema } from "./ts/shoprank/v1/scoring_pb.js";

const request = create(RecommendRequestSchema, {
  userId: "C15444", k: 7, explain: true,
  rules: create(RecommendRulesSchema, { excludePurchased: true, boostShare: 0.25, boostedItemIds: ["22423"],
                                        pins: [create(PinSchema, { itemId: "20668", position: 1 })] }),
});
const bytes: Uint8Array = toBinary(RecommendRequestSchema, request);
console.log(Array.from(bytes, (b: number) => b.toString(16).padStart(2, "0")).join(""));
"""


@pytest.fixture
def program_dir():
    """A folder inside tools/node, so node and tsc find its node_modules by walking up. (Not a symlink to
    node_modules in tmp_path: pytest's cleanup of old tmp folders would follow it and empty node_modules.)"""
    folder = Path(tempfile.mkdtemp(prefix=".ts-test-", dir=NODE.parent))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_typescript_stubs_compile_and_round_trip_through_python(program_dir):
    assert (NODE / ".bin" / "tsc").exists(), "tools/node is missing: scripts/install.sh installs it"
    shutil.copytree(PROJECT_ROOT / "gen" / "ts", program_dir / "ts")
    (program_dir / "main.ts").write_text(PROGRAM)
    (program_dir / "package.json").write_text(json.dumps({"type": "module"}))
    (program_dir / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext", "strict": True, "outDir": "out",
        "skipLibCheck": True}, "include": ["main.ts", "ts/**/*.ts"]}))
    compiled = subprocess.run([str(NODE / ".bin" / "tsc"), "-p", str(program_dir)], capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    ran = subprocess.run(["node", str(program_dir / "out" / "main.js")], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    request = scoring_pb2.RecommendRequest.FromString(bytes.fromhex(ran.stdout.strip()))
    assert (request.user_id, request.k, request.explain) == ("C15444", 7, True)
    assert request.rules.exclude_purchased and list(request.rules.boosted_item_ids) == ["22423"]
    assert abs(request.rules.boost_share - 0.25) < 1e-6 and (request.rules.pins[0].item_id, request.rules.pins[0].position) == ("20668", 1)
