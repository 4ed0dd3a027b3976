"""The load balancers' configurations, rendered from endpoints: pure, plus HAProxy's and nginx's own checks;
Traefik's static configuration and the cluster objects it reads."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from webapp_scaler_dev.loadbalancers import nginx, traefik
from webapp_scaler_dev.loadbalancers.endpoints import Backend, backends_from_slices, backends_from_vmis, vm_name_of_pod
from webapp_scaler_dev.loadbalancers.haproxy import (
    HAProxy,
    LoadBalancerSettings,
    configured_servers,
    render_config,
    running_servers,
)
from webapp_scaler_dev.processes import free_port

SETTINGS = LoadBalancerSettings(listen_port=18080, admin_socket=Path("/run/demo/admin.sock"))


def server_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("server ")]


@pytest.mark.parametrize(
    ("backends", "expected"),
    [
        pytest.param([], [], id="no-endpoints-no-servers"),
        pytest.param(
            [Backend("shop-b", "10.213.0.3", 8080, True), Backend("shop-a", "10.213.0.2", 8080, True)],
            [
                "server shop-a 10.213.0.2:8080 cookie shop-a weight 100",
                "server shop-b 10.213.0.3:8080 cookie shop-b weight 100",
            ],
            id="ready-endpoints-normal-weight-sorted",
        ),
        pytest.param(
            [Backend("shop-a", "10.213.0.2", 8080, True), Backend("shop-b", "10.213.0.3", 8080, False)],
            [
                "server shop-a 10.213.0.2:8080 cookie shop-a weight 100",
                "server shop-b 10.213.0.3:8080 cookie shop-b weight 0",
            ],
            id="not-ready-endpoint-stays-with-weight-0",
        ),
        pytest.param(
            [Backend("a b/c", "10.213.0.2", 8080, True)],
            ["server a_b_c 10.213.0.2:8080 cookie a_b_c weight 100"],
            id="unsafe-characters-in-names",
        ),
        pytest.param(
            [Backend("shop-a", "10.213.0.2", 8080, True), Backend("shop-a", "10.213.0.2", 8080, True)],
            ["server shop-a 10.213.0.2:8080 cookie shop-a weight 100"],
            id="duplicates-collapse",
        ),
    ],
)
def test_servers_follow_endpoints(backends: list[Backend], expected: list[str]) -> None:
    assert server_lines(render_config(SETTINGS, backends)) == expected


def test_stickiness_retry_and_listener() -> None:
    text = render_config(SETTINGS, [Backend("shop-a", "10.213.0.2", 8080, True)])
    assert "cookie WAS_STICKY insert indirect nocache" in text
    assert "bind 127.0.0.1:18080" in text
    assert re.search(r"retry-on .*\b503\b", text)
    assert "option redispatch 1" in text
    assert "stats socket /run/demo/admin.sock mode 600 level admin expose-fd listeners" in text
    assert "http-response set-header X-Served-By %s" in text


def test_same_endpoints_same_text_whatever_the_order() -> None:
    a, b = Backend("a", "10.0.0.1", 1, True), Backend("b", "10.0.0.2", 1, False)
    assert render_config(SETTINGS, [a, b]) == render_config(SETTINGS, [b, a])


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (make system-packages)")
def test_haproxy_accepts_the_rendered_config(tmp_path: Path) -> None:
    settings = LoadBalancerSettings(listen_port=18080, admin_socket=tmp_path / "admin.sock")
    backends = [Backend("shop-a", "10.213.0.2", 8080, True), Backend("shop-b", "10.213.0.3", 8080, False)]
    for candidate in ([], backends):
        path = tmp_path / "haproxy.cfg"
        path.write_text(render_config(settings, candidate))
        check = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    ("pod", "vm"),
    [
        pytest.param("virt-launcher-shop-x7k2p-abcde", "shop-x7k2p", id="launcher-pod"),
        pytest.param("some-other-pod", "some-other-pod", id="other-pod-kept"),
    ],
)
def test_server_named_after_the_vm(pod: str, vm: str) -> None:
    assert vm_name_of_pod(pod) == vm


def _endpoint(address: str, pod: str | None, ready: bool | None) -> SimpleNamespace:
    return SimpleNamespace(
        addresses=[address],
        conditions=SimpleNamespace(ready=ready),
        target_ref=SimpleNamespace(name=pod) if pod else None,
    )


def test_backends_from_endpointslices() -> None:
    item = SimpleNamespace(
        ports=[SimpleNamespace(name="http", port=8080)],
        endpoints=[
            _endpoint("10.213.0.2", "virt-launcher-shop-aaaaa-bcdfg", True),
            _endpoint("10.213.0.3", "virt-launcher-shop-bbbbb-bcdfg", False),
            _endpoint("10.213.0.4", None, None),  # unset means ready
        ],
    )
    empty = SimpleNamespace(ports=None, endpoints=None)
    assert sorted(backends_from_slices({"s1": item, "s2": empty})) == [
        Backend("10.213.0.4", "10.213.0.4", 8080, True),
        Backend("shop-aaaaa", "10.213.0.2", 8080, True),
        Backend("shop-bbbbb", "10.213.0.3", 8080, False),
    ]


def test_backends_from_vmis() -> None:
    def vmi(phase: str, ip: str | None, ready: str) -> dict[str, object]:
        interfaces = [{"ipAddress": ip}] if ip else []
        return {
            "status": {"phase": phase, "interfaces": interfaces, "conditions": [{"type": "Ready", "status": ready}]}
        }

    vmis = {
        "a": vmi("Running", "127.77.0.1", "True"),
        "b": vmi("Running", "127.77.0.2", "False"),
        "c": vmi("Scheduled", None, "False"),
    }
    assert sorted(backends_from_vmis(vmis, 8080)) == [
        Backend("a", "127.77.0.1", 8080, True),
        Backend("b", "127.77.0.2", 8080, False),
    ]


# ---- nginx: ready endpoints only, cookie hash, next upstream on 503 ------------------------------------


def test_nginx_keeps_only_ready_endpoints(tmp_path: Path) -> None:
    backends = [Backend("shop-b", "10.213.0.3", 8080, False), Backend("shop-a", "10.213.0.2", 8080, True)]
    text = nginx.render_config(nginx.NginxSettings(listen_port=18081), tmp_path, backends)
    servers = [line.strip() for line in text.splitlines() if line.strip().startswith("server 10.")]
    assert servers == ["server 10.213.0.2:8080 max_fails=0;"]


def test_nginx_sticky_hash_and_retry_on_503(tmp_path: Path) -> None:
    text = nginx.render_config(nginx.NginxSettings(listen_port=18081), tmp_path, [Backend("a", "10.0.0.1", 1, True)])
    assert "hash $sticky_key consistent;" in text
    assert 'map $cookie_WAS_STICKY $sticky_key { "" $request_id; default $cookie_WAS_STICKY; }' in text
    assert "add_header Set-Cookie $sticky_set always;" in text
    assert "proxy_next_upstream error timeout http_503 non_idempotent;" in text
    assert "listen 127.0.0.1:18081;" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (make system-packages)")
def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    settings = nginx.NginxSettings(listen_port=18081)
    for candidate in ([], [Backend("a", "10.213.0.2", 8080, True), Backend("b", "10.213.0.3", 8080, False)]):
        server = nginx.Nginx(settings, tmp_path)
        server._write_checked(server.render(candidate))  # raises with nginx's message
        assert "upstream vms" in server.config_path.read_text()


# ---- Traefik: providers pointed at the apiserver, the classes it answers to ------------------------------


def test_traefik_static_config_points_both_providers_at_the_apiserver() -> None:
    settings = traefik.TraefikSettings(
        listen_port=18082,
        ping_port=18083,
        apiserver="https://127.0.0.1:6443",
        token="t0ken",
        ca_file=Path("/ca.crt"),
        namespaces=("ns-a",),
    )
    config = traefik.static_config(settings)
    assert config["entryPoints"]["web"] == {"address": "127.0.0.1:18082"}
    assert config["ping"] == {"entryPoint": "ping"}
    for provider in ("kubernetesIngress", "kubernetesGateway"):
        assert config["providers"][provider]["endpoint"] == "https://127.0.0.1:6443"
        assert config["providers"][provider]["token"] == "t0ken"
        assert config["providers"][provider]["certAuthFilePath"] == "/ca.crt"
        assert config["providers"][provider]["namespaces"] == ["ns-a"]
    only_ingress = traefik.static_config(dataclasses.replace(settings, gateway=False))
    assert list(only_ingress["providers"]) == ["kubernetesIngress"]


def test_traefik_gateway_listener_uses_the_entry_point_port() -> None:
    gw = traefik.gateway("web", "ns-a", 18082)
    assert gw["spec"]["gatewayClassName"] == traefik.gateway_class()["metadata"]["name"]
    assert gw["spec"]["listeners"][0]["port"] == 18082
    assert traefik.gateway_class()["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert traefik.ingress_class()["spec"]["controller"] == "traefik.io/ingress-controller"


# ---- HAProxy: a reload counts only once the running worker serves the new servers ---------------------

STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 vms 1 shop-a 10.213.0.2 2 0 100 100 2 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0
3 vms 2 shop-b 10.213.0.3 2 0 0 0 2 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0
"""  # noqa: E501  (HAProxy 2.6's `show servers state vms`, verbatim)


def test_the_running_servers_read_from_the_admin_socket_match_the_rendered_ones() -> None:
    backends = [Backend("shop-a", "10.213.0.2", 8080, True), Backend("shop-b", "10.213.0.3", 8080, False)]
    text = render_config(SETTINGS, backends)
    assert configured_servers(text) == {("shop-a", "10.213.0.2", 8080, 100), ("shop-b", "10.213.0.3", 8080, 0)}
    assert running_servers(STATE) == configured_servers(text)
    # the worker of the previous configuration (shop-b still ready) does not count as this one
    assert running_servers(STATE.replace("2 0 0 0 2 1", "2 0 100 100 2 1")) != configured_servers(text)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (make system-packages)")
def test_every_haproxy_update_is_in_effect_when_it_returns_even_in_a_burst(tmp_path: Path) -> None:
    """EndpointSlice events come in bursts; each update reloads, and a reload that HAProxy drops while the
    previous one hands its listeners over would leave the old servers serving. `update` returns only once
    the running worker reports the new servers (it raises ProxyError after three reloads without)."""
    settings = LoadBalancerSettings(listen_port=free_port(), admin_socket=tmp_path / "admin.sock")
    proxy = HAProxy(settings, tmp_path)
    proxy.start()
    try:
        for step in range(12):  # one to four servers, never the same set twice in a row
            backends = [
                Backend(f"shop-{i}", f"10.213.0.{i + 2}", 8080, (i + step) % 3 != 0) for i in range(step % 4 + 1)
            ]
            assert proxy.update(backends)
            assert proxy.applied(proxy.render(backends)) is True
        assert proxy.reloads >= 12
    finally:
        proxy.stop()
