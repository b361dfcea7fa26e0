#!/usr/bin/env python3
"""Pack a root filesystem folder into a single-layer image archive.

The local cluster cannot pull from any registry, so its images are built from
Debian packages into a folder and packed here in the `docker save` archive
format, which `ctr images import` reads. Standard library only, so it runs
before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import tempfile

# Contents of these folders belong to the container runtime, not the image.
RUNTIME_DIRS = {"dev", "proc", "sys", "run"}


def _layer_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = info.name.split("/")
    if len(parts) > 1 and parts[0] in RUNTIME_DIRS:
        return None
    if info.ischr() or info.isblk() or info.isfifo():
        return None
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def write_layer(rootfs: str, out: io.BufferedWriter) -> None:
    """Write rootfs as an uncompressed tar, sorted so that equal trees give equal bytes."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, rootfs)
            entries = sorted(filenames) + [
                d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
            ]
            if rel_dir != ".":
                tar.add(dirpath, arcname=rel_dir, recursive=False, filter=_layer_filter)
            for name in sorted(entries):
                path = os.path.join(dirpath, name)
                arcname = name if rel_dir == "." else f"{rel_dir}/{name}"
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    continue
                tar.add(path, arcname=arcname, recursive=False, filter=_layer_filter)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(rootfs: str, ref: str, output: str, config: dict[str, object]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        layer_path = os.path.join(tmp, "layer.tar")
        with open(layer_path, "wb") as f:
            write_layer(rootfs, f)
        diff_id = "sha256:" + sha256_file(layer_path)
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "hack/oci_archive.py", "comment": ref}],
        }
        config_bytes = json.dumps(image_config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
        manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
        with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as archive:
            for name, data in (
                (config_name, config_bytes),
                ("manifest.json", json.dumps(manifest).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            archive.add(layer_path, arcname=layer_name)
        return diff_id


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs", help="folder holding the image's file tree")
    parser.add_argument("ref", help="image reference, e.g. localhost/overseer/library:dev")
    parser.add_argument("output", help="archive to write")
    parser.add_argument("--entrypoint", nargs="*", default=None)
    parser.add_argument("--cmd", nargs="*", default=None)
    parser.add_argument("--user", default=None)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE, repeatable")
    args = parser.parse_args(argv)
    config: dict[str, object] = {
        "Env": args.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    }
    if args.entrypoint is not None:
        config["Entrypoint"] = args.entrypoint
    if args.cmd is not None:
        config["Cmd"] = args.cmd
    if args.user:
        config["User"] = args.user
    if args.workdir:
        config["WorkingDir"] = args.workdir
    diff_id = build(args.rootfs, args.ref, args.output, config)
    print(f"{args.ref} layer {diff_id[:19]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
