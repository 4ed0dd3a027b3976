"""The Argo CD files of manifests/argocd agree with each other: argocd-cm carries health.lua verbatim (one
script, never two hand-kept copies), health_test.yaml has a case for every testdata file and every
health status the script can return, and the Application installs a path of this repository. Running
the script is tests/integration/test_argocd_health.py's part (it needs the built Lua harness)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import REPO

ARGOCD = REPO / "manifests" / "argocd"
CUSTOMIZATION = ARGOCD / "resource_customizations" / "webappscaler.io" / "WebAppScaling"
KEY = "resource.customizations.health.webappscaler.io_WebAppScaling"


def test_argocd_cm_holds_health_lua_verbatim() -> None:
    [configmap] = list(yaml.safe_load_all((ARGOCD / "argocd-cm.yaml").read_text()))
    assert (configmap["kind"], configmap["metadata"]["name"], configmap["metadata"]["namespace"]) == (
        "ConfigMap",
        "argocd-cm",
        "argocd",
    )
    assert configmap["data"] == {KEY: (CUSTOMIZATION / "health.lua").read_text()}, (
        "argocd-cm.yaml's script differs from health.lua: copy health.lua into it (indented four spaces)"
    )


def test_every_testdata_file_is_a_case_and_every_status_is_covered() -> None:
    tests = yaml.safe_load((CUSTOMIZATION / "health_test.yaml").read_text())["tests"]
    paths = [t["inputPath"] for t in tests]
    assert sorted(paths) == sorted(f"testdata/{p.name}" for p in (CUSTOMIZATION / "testdata").glob("*.yaml"))
    assert {t["healthStatus"]["status"] for t in tests} == {"Suspended", "Degraded", "Progressing", "Healthy"}
    for t in tests:
        assert set(t["healthStatus"]) == {"status", "message"}
        assert t["healthStatus"]["message"], f"{t['inputPath']}: an empty message tells a person nothing"


def test_the_application_installs_a_path_of_this_repository() -> None:
    application = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert (application["apiVersion"], application["kind"]) == ("argoproj.io/v1alpha1", "Application")
    path = Path(application["spec"]["source"]["path"])
    assert (REPO / path / "kustomization.yaml").is_file() or (REPO / path / "Chart.yaml").is_file()
