"""The CRD's CEL rules and their Python twins (`webapp_scaler.admission`): the same rules, the same words,
so `webapp-scaler render` refuses what admission refuses with admission's message. The apiserver itself
checks the CEL side in tests/integration/test_webappscaling_crd.py."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from webapp_scaler import admission, webappscaling


def cel_rules(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, str, str]]:
    """(where, rule, message) of every x-kubernetes-validations entry of the CRD's schema."""
    for rule in node.get("x-kubernetes-validations", []):
        yield path, rule["rule"], " ".join(rule["message"].split())
    for name, child in (node.get("properties") or {}).items():
        yield from cel_rules(child, f"{path}.{name}")
    if "items" in node:
        yield from cel_rules(node["items"], f"{path}[]")


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / "webappscaling.yaml").read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_every_cel_rule_has_its_twin_with_the_same_message() -> None:
    crd_messages = sorted(message for _, _, message in cel_rules(crd_schema()))
    assert crd_messages == sorted(rule.message for rule in admission.RULES)


def test_the_parser_refuses_the_new_rules_with_the_cel_messages() -> None:
    """For the rules of drain modes and routes the operator's own parser says the same words too."""
    assert {
        webappscaling.DRAIN_MODE_NEEDS_PROXY,
        webappscaling.ROUTE_NEEDS_PARENTS,
        webappscaling.RETRY_ATTEMPTS_RANGE,
        webappscaling.PERMANENT_COOKIE_NEEDS_TIMEOUT,
    } <= {message for _, _, message in cel_rules(crd_schema())}


VALID: dict[str, Any] = {
    "apiVersion": "webappscaler.io/v1alpha1",
    "kind": "WebAppScaling",
    "metadata": {"name": "shop", "namespace": "prod"},
    "spec": {"goldenImage": {"name": "golden"}, "vmTemplate": {"spec": {"domain": {}}}},
}


def changed(spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    body["spec"].update(spec or {})
    body["metadata"].update(metadata)
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (changed(name="a" * 46), admission.NAME_TOO_LONG),
        (
            changed({"vmTemplate": {"spec": {"domain": {}, "volumes": [{"name": "rootdisk"}]}}}),
            admission.ROOT_DISK_VOLUME,
        ),
        (
            changed({"vmTemplate": {"rootDiskName": "os", "spec": {"domain": {}, "volumes": [{"name": "os"}]}}}),
            admission.ROOT_DISK_VOLUME,
        ),
        (
            changed({"vmTemplate": {"metadata": {"labels": {"webappscaler.io/x": "y"}}, "spec": {"domain": {}}}}),
            admission.RESERVED_LABELS,
        ),
        (changed({"replicas": {"min": 11}}), admission.MIN_ABOVE_MAX),  # the default max is 10
        (changed({"sessions": {"scrapeTimeoutSeconds": 20}}), admission.TIMEOUT_ABOVE_INTERVAL),
        (changed({"sessions": {"movingAverage": {"windowSeconds": 10}}}), admission.WINDOW_BELOW_INTERVAL),
        (
            changed({"service": {"sessionAffinity": "None", "sessionAffinityTimeoutSeconds": 5}}),
            admission.AFFINITY_TIMEOUT,
        ),
        (changed({"ingress": {"tls": {"secretName": "t"}}}), admission.TLS_NEEDS_HOST),
        (changed({"replicas": {"desired": 3}}), admission.DESIRED_NEEDS_EXTERNAL),  # Sessions, the default
        (changed({"mode": "Sessions", "replicas": {"desired": 0}}), admission.DESIRED_NEEDS_EXTERNAL),
        (changed({"sessions": {"agent": {"source": "push"}}}), webappscaling.DRAIN_MODE_NEEDS_PROXY),
        (changed({"route": {}}), webappscaling.ROUTE_NEEDS_PARENTS),
        (changed({"route": {"parentRefs": []}}), webappscaling.ROUTE_NEEDS_PARENTS),
        (
            changed({"route": {"parentRefs": [{"name": "gw"}], "retry": {"attempts": 1}}}),
            webappscaling.RETRY_ATTEMPTS_RANGE,
        ),
        (
            changed({"route": {"parentRefs": [{"name": "gw"}], "retry": {"attempts": 11}}}),
            webappscaling.RETRY_ATTEMPTS_RANGE,
        ),
        (
            changed({"route": {"parentRefs": [{"name": "gw"}], "sessionPersistence": {"lifetimeType": "Permanent"}}}),
            webappscaling.PERMANENT_COOKIE_NEEDS_TIMEOUT,
        ),
    ],
    ids=lambda v: str(v)[:60] if isinstance(v, str) else None,
)
def test_a_broken_rule_gives_its_message(body: dict[str, Any], message: str) -> None:
    assert admission.errors(body) == [message]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"sessions": {"agent": {"source": "connections"}}, "scaleIn": {"drain": {"mode": "Readiness"}}},
        {"scaleIn": {"drain": {"mode": "RefuseNewSessions"}}, "sessions": {"agent": {"source": "proxy"}}},
        {"replicas": {"min": 3, "max": 3}, "sessions": {"scrapeIntervalSeconds": 5, "scrapeTimeoutSeconds": 5}},
        {"route": {"parentRefs": [{"name": "gw"}], "retry": {"attempts": 10}}},
        {
            "route": {
                "parentRefs": [{"name": "gw"}],
                "sessionPersistence": {"lifetimeType": "Permanent", "absoluteTimeout": "8h"},
            }
        },
        {"ingress": {"tls": {"secretName": "t"}, "host": "shop.example.com"}},
        {"mode": "External", "replicas": {"min": 1, "max": 8, "desired": 2}},
    ],
)
def test_a_valid_object_breaks_no_rule(spec: dict[str, Any]) -> None:
    assert admission.errors(changed(spec)) == []
    webappscaling.parse_valid(changed(spec))  # and the parser agrees


def test_a_stored_desired_count_in_sessions_mode_is_refused_by_admission_only() -> None:
    """An object stored before the rule (desired set, mode Sessions) keeps scaling by its sessions: the
    operator's parser accepts it and ignores the count; only a new write is refused."""
    body = changed({"replicas": {"desired": 3}})
    assert admission.errors(body) == [admission.DESIRED_NEEDS_EXTERNAL]
    was = webappscaling.parse_valid(body)
    assert (was.spec.scaling.mode, was.spec.scaling.replicas.desired) == ("Sessions", 3)


def test_a_value_of_the_wrong_type_is_left_to_the_schema() -> None:
    """`replicas.min: "three"` is the schema's error (the parser names the field); no rule misfires."""
    assert admission.errors(changed({"replicas": {"min": "three"}, "route": {"retry": []}})) == [
        webappscaling.ROUTE_NEEDS_PARENTS
    ]


def template(**metadata: dict[str, str]) -> dict[str, Any]:
    return changed({"vmTemplate": {"metadata": metadata, "spec": {"domain": {}}}})


GW = {"name": "gw"}
# one broken value per string format and per combination rule (tests/integration/test_webappscaling_crd.py
# sends more of them to the apiserver): admission, render and the operator's parser refuse each in the same
# words, so a stored object from before a rule is InvalidSpec rather than an apply refused every round
BROKEN_STRINGS = [
    (changed(name="shop.v2"), webappscaling.NAME_NOT_DNS_LABEL),
    (changed({"goldenImage": {"name": "golden..image"}}), webappscaling.GOLDEN_IMAGE_NAME_FORMAT),
    (changed({"goldenImage": {"name": "golden", "namespace": "Images"}}), webappscaling.GOLDEN_IMAGE_NAMESPACE_FORMAT),
    (
        changed({"goldenImage": {"name": "golden", "storage": {"storageClassName": "fast ssd"}}}),
        webappscaling.STORAGE_CLASS_FORMAT,
    ),
    (template(labels={"team name": "web"}), webappscaling.TEMPLATE_LABEL_KEYS),
    (template(labels={"app": "web shop"}), webappscaling.TEMPLATE_LABEL_VALUES),
    (template(labels={"app.kubernetes.io/part-of": "other"}), webappscaling.TEMPLATE_LABEL_OPERATORS),
    (template(annotations={"owner:team": "web"}), webappscaling.TEMPLATE_ANNOTATION_KEYS),
    (
        changed({"vmTemplate": {"spec": {"domain": {}, "volumes": [{"name": "Cloud_Init"}]}}}),
        webappscaling.VOLUME_NAME_FORMAT,
    ),
    (
        changed({"vmTemplate": {"rootDiskName": "Root.Disk", "spec": {"domain": {}}}}),
        webappscaling.ROOT_DISK_NAME_FORMAT,
    ),
    (changed({"sessions": {"agent": {"path": "/my metrics"}}}), webappscaling.AGENT_PATH_FORMAT),
    (changed({"sessions": {"agent": {"drainPath": "/drain\r\nX: 1"}}}), webappscaling.AGENT_DRAIN_PATH_FORMAT),
    (changed({"sessions": {"agent": {"path": "/a", "drainPath": "/a"}}}), webappscaling.AGENT_PATHS_DIFFER),
    (changed({"service": {"targetPort": 9100}}), webappscaling.TARGET_PORT_IS_AGENT_PORT),
    (
        changed({"sessions": {"agent": {"drainTokenSecretRef": {"name": "Drain_Token"}}}}),
        webappscaling.DRAIN_SECRET_NAME_FORMAT,
    ),
    (
        changed({"sessions": {"agent": {"drainTokenSecretRef": {"name": "drain", "key": "to ken"}}}}),
        webappscaling.DRAIN_SECRET_KEY_FORMAT,
    ),
    (changed({"ingress": {"host": "a" * 64 + ".example.com"}}), webappscaling.INGRESS_HOST_FORMAT),
    (changed({"ingress": {"host": "10.0.0.1"}}), webappscaling.INGRESS_HOST_FORMAT),
    (changed({"ingress": {"className": "nginx internal"}}), webappscaling.INGRESS_CLASS_FORMAT),
    (
        changed({"ingress": {"host": "shop.example.com", "tls": {"secretName": "shop_tls"}}}),
        webappscaling.INGRESS_TLS_SECRET_FORMAT,
    ),
    (changed({"ingress": {"path": "/shop/../admin"}}), webappscaling.INGRESS_PATH_FORMAT),
    (changed({"ingress": {"annotations": {"a b": "c"}}}), webappscaling.INGRESS_ANNOTATION_KEYS),
    (changed({"route": {"parentRefs": [GW], "hostnames": ["192.168.0.1"]}}), webappscaling.ROUTE_HOSTNAMES_FORMAT),
    (changed({"route": {"parentRefs": [GW], "path": "/a%2fb"}}), webappscaling.ROUTE_PATH_FORMAT),
    (changed({"route": {"parentRefs": [{"name": "Public Gateway"}]}}), webappscaling.ROUTE_PARENT_NAME_FORMAT),
    (changed({"route": {"parentRefs": [GW], "annotations": {"/x": "y"}}}), webappscaling.ROUTE_ANNOTATION_KEYS),
    (changed({"route": {"parentRefs": [GW], "labels": {"tier/": "front"}}}), webappscaling.ROUTE_LABEL_KEYS),
    (changed({"route": {"parentRefs": [GW], "labels": {"tier": "-front"}}}), webappscaling.ROUTE_LABEL_VALUES),
]


@pytest.mark.parametrize(("body", "message"), BROKEN_STRINGS, ids=lambda v: str(v)[:50] if isinstance(v, str) else None)
def test_a_broken_string_gives_its_message_in_admission_and_in_the_parser(body: dict[str, Any], message: str) -> None:
    assert admission.errors(body) == [message]
    was = webappscaling.parse(body)
    assert isinstance(was, webappscaling.InvalidWebAppScaling)
    assert was.error == message


def test_every_format_and_combination_rule_is_tested() -> None:
    """A rule added without a broken example here would be a twin nobody checked."""
    tested = {message for _, message in BROKEN_STRINGS}
    assert {f.message for f in webappscaling.FORMATS} | {
        webappscaling.AGENT_PATHS_DIFFER,
        webappscaling.TARGET_PORT_IS_AGENT_PORT,
    } <= tested


def test_the_cel_regular_expressions_are_the_pythons() -> None:
    """The CEL rules and their twins must test the same strings: every regex a CEL rule matches against is
    one of webappscaling's constants, character for character."""
    found = {
        regex for _, rule, _ in cel_rules(crd_schema()) for _, regex in re.findall(r"matches\((['\"])(.*?)\1\)", rule)
    }
    python = {
        webappscaling.DNS_LABEL,
        webappscaling.DNS_SUBDOMAIN,
        webappscaling.HOSTNAME,
        webappscaling.NUMERIC_HOST,
        webappscaling.QUALIFIED_NAME,
        webappscaling.LABEL_VALUE,
        webappscaling.URL_PATH,
        webappscaling.SECRET_KEY,
    }
    assert found == python


@pytest.mark.parametrize(
    "spec",
    [
        {"goldenImage": {"name": "golden.v2", "namespace": "images", "storage": {"storageClassName": "fast.ssd"}}},
        {"vmTemplate": {"metadata": {"labels": {"example.com/tier": "web_1.0", "app": ""}}, "spec": {"domain": {}}}},
        {
            "ingress": {
                "host": "*.shop.example.com",
                "className": "nginx",
                "path": "/shop/~me;v=1",
                "tls": {"secretName": "shop.tls"},
            }
        },
        {"ingress": {"annotations": {"nginx.ingress.kubernetes.io/affinity-mode": "persistent"}}},
        {"route": {"parentRefs": [{"name": "public.gw"}], "hostnames": ["a" * 63 + ".example.com"], "path": "/a%20b"}},
        {
            "sessions": {
                "agent": {
                    "path": "/stats/metrics",
                    "drainPath": "/stats/drain",
                    "drainTokenSecretRef": {"name": "drain.token", "key": "tls.key"},
                }
            }
        },
    ],
)
def test_valid_strings_break_no_format(spec: dict[str, Any]) -> None:
    """The formats refuse what Kubernetes refuses, not more: dots in subdomains, prefixed keys, empty label
    values, 63-character labels, a wildcard host and %XX escapes pass."""
    assert admission.errors(changed(spec)) == []
    webappscaling.parse_valid(changed(spec))
