"""The bin/ bundle: an immutable ConfigMap per commit, its volume items, its cleanup."""

from __future__ import annotations

import base64
import re

import pytest

from overseer import errors
from overseer.core import bundle

COMMIT = "0123456789abcdef0123456789abcdef01234567"
KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

FILES = [
    ("run", 0o755, b"#!/bin/sh\necho run\n"),
    ("lib/common.sh", 0o644, b"x=1\n"),
    ("odd name!.sh", 0o755, b"\x00\xffbinary"),
    (".hidden", 0o644, b"h"),
]


def test_manifest_is_an_immutable_configmap_with_every_file() -> None:
    manifest = bundle.build_bundle("ops", "team-a", COMMIT, FILES)
    assert manifest is not None
    assert manifest["kind"] == "ConfigMap"
    assert manifest["immutable"] is True
    assert manifest["metadata"]["name"] == "ops-bin-0123456789ab"
    assert manifest["metadata"]["namespace"] == "team-a"
    items = bundle.volume_items(manifest)
    by_path = {item["path"]: item for item in items}
    assert set(by_path) == {path for path, _, _ in FILES}
    for path, mode, data in FILES:
        item = by_path[path]
        assert KEY.match(item["key"]) and not item["key"].startswith(".")
        assert base64.b64decode(manifest["binaryData"][item["key"]]) == data
        assert item["mode"] == mode
    assert by_path["run"]["key"] == "run", "safe names stay readable"
    assert len({item["key"] for item in items}) == len(items)


def test_labels_link_repository_and_commit() -> None:
    manifest = bundle.build_bundle("ops", "ns", COMMIT, FILES)
    assert manifest is not None
    labels = manifest["metadata"]["labels"]
    assert labels[bundle.LABEL_REPOSITORY] == "ops"
    assert labels[bundle.LABEL_COMMIT] == COMMIT
    assert labels[bundle.LABEL_MANAGED_BY] == "overseer"
    assert manifest["metadata"]["annotations"][bundle.ANNOTATION_COMMIT] == COMMIT


def test_owner_references_are_passed_through() -> None:
    owner = {"apiVersion": "overseer.dev/v1alpha1", "kind": "OverseerRepository", "name": "ops"}
    manifest = bundle.build_bundle("ops", "ns", COMMIT, FILES, owner_references=[owner])
    assert manifest is not None
    assert manifest["metadata"]["ownerReferences"] == [owner]


def test_an_empty_bin_gets_an_empty_bundle_so_its_absence_means_gone() -> None:
    manifest = bundle.build_bundle("ops", "ns", COMMIT, [])
    assert manifest["metadata"]["name"] == bundle.bundle_name("ops", COMMIT)
    assert manifest.get("binaryData", {}) == {}
    assert bundle.volume_items(manifest) == []


def test_modes_are_normalised_to_executable_or_not() -> None:
    manifest = bundle.build_bundle("ops", "ns", COMMIT, [("a", 0o100755, b""), ("b", 0o600, b"")])
    assert manifest is not None
    assert [i["mode"] for i in bundle.volume_items(manifest)] == [0o755, 0o644]


def test_name_is_dns_safe_and_bounded() -> None:
    long_name = "a" * 300
    for repository in ("ops", long_name, "Weird_Name", "x." * 130, "a_.b", "a..b", "-.-", "é"):
        name = bundle.bundle_name(repository, COMMIT)
        assert len(name) <= 253
        assert DNS_SUBDOMAIN.match(name), name
        assert name.endswith("-bin-0123456789ab")
    assert bundle.bundle_name(long_name, COMMIT) != bundle.bundle_name(long_name + "b", COMMIT)
    assert bundle.bundle_name("ops", COMMIT) != bundle.bundle_name("ops", "f" * 40)


def test_long_repository_gets_a_valid_label() -> None:
    manifest = bundle.build_bundle("r" * 200, "ns", COMMIT, FILES)
    assert manifest is not None
    for value in manifest["metadata"]["labels"].values():
        assert len(value) <= 63 and LABEL_VALUE.match(value)
    assert manifest["metadata"]["annotations"][bundle.ANNOTATION_REPOSITORY] == "r" * 200


def test_keys_never_collide() -> None:
    paths = ["a/b", "a_b", "a.b", "_a_b", "a b", "..x", "x" * 400, "x" * 401]
    keys = [bundle.bundle_key(p) for p in paths]
    assert len(set(keys)) == len(paths)
    for key in keys:
        assert KEY.match(key) and len(key) <= 253 and not key.startswith(".")


def test_over_one_mebibyte_is_stalled_and_says_what_to_do() -> None:
    big = [("tool", 0o755, b"x" * (bundle.MAX_BUNDLE_BYTES - 10)), ("data.bin", 0o644, b"y" * 11)]
    with pytest.raises(errors.BundleTooLargeError) as caught:
        bundle.build_bundle("ops", "ns", COMMIT, big)
    assert caught.value.stalled
    message = str(caught.value)
    assert "tool" in message and "image" in message
    exactly = [("tool", 0o755, b"x" * bundle.MAX_BUNDLE_BYTES)]
    assert bundle.build_bundle("ops", "ns", COMMIT, exactly) is not None


def test_gc_deletes_bundles_of_unused_commits_only() -> None:
    existing = {"ops-bin-aaa": "a" * 40, "ops-bin-bbb": "b" * 40, "ops-bin-ccc": "c" * 40}
    assert bundle.plan_bundle_gc(existing, {"b" * 40}) == ["ops-bin-aaa", "ops-bin-ccc"]
    assert bundle.plan_bundle_gc(existing, set(existing.values())) == []
    assert bundle.plan_bundle_gc({}, {"a" * 40}) == []


def test_gc_keeps_the_commits_of_ended_executions_newest_first_up_to_the_bound() -> None:
    a, b, c, d, e = (letter * 40 for letter in "abcde")
    existing = {f"ops-bin-{x[:3]}": x for x in (a, b, c, d, e)}
    # e is synced, d runs; c then a ran most recently (b never ran, or its execution is gone)
    assert bundle.plan_bundle_gc(existing, {e, d}, [c, a, c], keep=10) == ["ops-bin-bbb"]
    # At most three in all: e and d must stay, so only c, the most recent, is kept
    assert bundle.plan_bundle_gc(existing, {e, d}, [c, a], keep=3) == ["ops-bin-aaa", "ops-bin-bbb"]
    # The bound never drops a bundle that must stay
    assert bundle.plan_bundle_gc(existing, {e, d, a}, [c], keep=1) == ["ops-bin-bbb", "ops-bin-ccc"]
    # A commit that ran but has no bundle takes no room
    assert bundle.plan_bundle_gc(existing, {e}, ["f" * 40, a], keep=2) == [
        "ops-bin-bbb",
        "ops-bin-ccc",
        "ops-bin-ddd",
    ]
