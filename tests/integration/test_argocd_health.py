"""The Argo CD health script of manifests/argocd, run the way an Argo CD application controller runs a
script configured in argocd-cm: hack/lua-health (gopher-lua with only the base, table and package
libraries and Argo CD's safe os, the object as `obj`; ported from Argo CD's util/lua/lua.go). The
script it runs is the one in argocd-cm.yaml, i.e. what a user deploys. Needs the Go build of
hack/build-go-tools.sh (`make test` builds it first; the fixture builds it when missing), never skipped."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from webapp_scaler_dev.devcluster.go_tools import GoTools, go_tools

ARGOCD = REPO / "manifests" / "argocd"
ARGOCD_CM = ARGOCD / "argocd-cm.yaml"
CUSTOMIZATION = ARGOCD / "resource_customizations" / "webappscaler.io" / "WebAppScaling"
TESTDATA = CUSTOMIZATION / "testdata"


@pytest.fixture(scope="module")
def tools() -> GoTools:
    return go_tools(build=True)


def health(tools: GoTools, obj: dict[str, Any], *script: str) -> dict[str, Any]:
    """{name, status, message} of one object under the argocd-cm script (or `-script FILE`)."""
    args = list(script) or ["-configmap", str(ARGOCD_CM)]
    result = subprocess.run(
        [str(tools.lua_health), *args], input=json.dumps(obj), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    return dict(json.loads(line))


def test_every_case_of_health_test_yaml_passes_under_the_argocd_cm_library_set(tools: GoTools) -> None:
    result = subprocess.run(
        [str(tools.lua_health), "-configmap", str(ARGOCD_CM), "-test", str(CUSTOMIZATION / "health_test.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cases = yaml.safe_load((CUSTOMIZATION / "health_test.yaml").read_text())["tests"]
    assert result.stdout.count("\nok ") + result.stdout.startswith("ok ") == len(cases) > 0, result.stdout


def test_the_test_mode_fails_on_a_mismatch(tools: GoTools, tmp_path: Path) -> None:
    """The runner the case above trusts: a wrong expectation must make it exit non-zero."""
    (tmp_path / "health.lua").write_text((CUSTOMIZATION / "health.lua").read_text())
    (tmp_path / "testdata").mkdir()
    (tmp_path / "testdata" / "healthy.yaml").write_text((TESTDATA / "healthy.yaml").read_text())
    wrong = {"tests": [{"healthStatus": {"status": "Degraded", "message": "x"}, "inputPath": "testdata/healthy.yaml"}]}
    (tmp_path / "health_test.yaml").write_text(yaml.safe_dump(wrong))
    result = subprocess.run(
        [str(tools.lua_health), "-test", str(tmp_path / "health_test.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert 'want Degraded "x", got Healthy "2 of 2 VMs ready"' in result.stdout


def test_the_string_library_is_absent_as_in_argo_cd(tools: GoTools, tmp_path: Path) -> None:
    """Argo CD opens no string library for argocd-cm scripts: string.format is an error there, so it must
    be one here, or the script could pass its tests and fail in Argo CD. With every library opened (what
    Argo CD does for built-in scripts and useOpenLibs) the same script works: the failure is the set's."""
    script = tmp_path / "format.lua"
    script.write_text('return {status = string.format("%s", "Healthy"), message = ""}\n')
    obj = yaml.safe_load((TESTDATA / "healthy.yaml").read_text())
    restricted = subprocess.run(
        [str(tools.lua_health), "-script", str(script)], input=json.dumps(obj), capture_output=True, text=True
    )
    assert restricted.returncode == 1
    assert "attempt to index a non-table object(nil) with key 'format'" in restricted.stderr
    assert health(tools, obj, "-open-libs", "-script", str(script))["status"] == "Healthy"


@pytest.mark.parametrize(
    ("global_name", "present"),
    [("string", False), ("math", False), ("io", False), ("os", False), ("table", True), ("require", True)],
)
def test_the_globals_are_argo_cds(tools: GoTools, tmp_path: Path, global_name: str, present: bool) -> None:
    """The whole set, one name each: Argo CD registers its safe os functions under the table library's
    name (util/lua/oslib_safe.go), so the global `os` is nil and only require("os") yields them."""
    script = tmp_path / "probe.lua"
    script.write_text(f'if {global_name} == nil then return {{status = "Missing"}} end return {{status = "Healthy"}}\n')
    found = health(tools, {"kind": "WebAppScaling", "metadata": {"name": "probe"}}, "-script", str(script))
    assert found["status"] == ("Healthy" if present else "Missing")


def test_require_os_gives_the_safe_subset_only(tools: GoTools, tmp_path: Path) -> None:
    script = tmp_path / "os.lua"
    script.write_text(
        'local os = require("os")\n'
        'if os.time() > 0 and os.execute == nil and os.exit == nil then return {status = "Healthy"} end\n'
        'return {status = "Degraded", message = "unsafe os"}\n'
    )
    assert health(tools, {"metadata": {"name": "x"}}, "-script", str(script))["status"] == "Healthy"


@pytest.mark.parametrize(
    ("testdata", "status"),
    [
        ("suspended.yaml", "Suspended"),
        ("degraded_golden_image_missing.yaml", "Degraded"),
        ("progressing_vms_booting.yaml", "Progressing"),
        ("healthy.yaml", "Healthy"),
    ],
)
def test_the_script_returns_each_health_status(tools: GoTools, testdata: str, status: str) -> None:
    found = health(tools, yaml.safe_load((TESTDATA / testdata).read_text()))
    assert found["status"] == status
    assert found["message"] or status == "Healthy"


def test_objects_are_decoded_as_argo_cd_decodes_them(tools: GoTools, tmp_path: Path) -> None:
    """Argo CD's decodeValue: arrays become tables indexed from 1, integers numbers, null nil."""
    script = tmp_path / "decode.lua"
    script.write_text(
        "local c = obj.status.conditions\n"
        'if c[1].type == "Ready" and c[0] == nil and #c == 2 and obj.metadata.generation + 1 == 4 '
        'and obj.status.sessions.current == nil then return {status = "Healthy"} end\n'
        'return {status = "Degraded", message = "decoded differently"}\n'
    )
    obj = {
        "metadata": {"name": "x", "generation": 3},
        "status": {"conditions": [{"type": "Ready"}, {"type": "Stalled"}], "sessions": {"current": None}},
    }
    assert health(tools, obj, "-script", str(script))["status"] == "Healthy"


def test_an_unknown_status_is_unknown_with_argo_cds_message(tools: GoTools, tmp_path: Path) -> None:
    script = tmp_path / "bad.lua"
    script.write_text('return {status = "Fine", message = "all good"}\n')
    found = health(tools, {"metadata": {"name": "x"}}, "-script", str(script))
    assert (found["status"], found["message"]) == ("Unknown", "Lua returned an invalid health status")
