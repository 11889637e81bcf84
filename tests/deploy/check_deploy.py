#!/usr/bin/env python3
"""Checks the deployment files offline, as `kubectl` and `docker compose` would read them.

usage: check_deploy.py ISCP_BIN K8S_DIR COMPOSE_FILE

- Kubernetes: every document of every YAML file under K8S_DIR parses and validates against the
  Kubernetes object schemas of the `kubernetes` Python client (its pydantic models, V1StatefulSet
  and the rest, with unknown fields forbidden): an unknown field anywhere, a wrong type or a
  missing required field is an error.
- Compose: the file parses; every service's `command` and health check is a valid `iscp`
  invocation for the binary's own argument parser (run with `--help` after the arguments, which
  clap accepts only when everything before it parses); the folders the commands name
  (--state, --results, --cache) are mounted volumes.
- Both: every `iscp` command line in the manifests (container args, probes) parses the same way.
Prints one line per checked object and exits 1 with every problem listed.
"""
import subprocess
import sys
from pathlib import Path

import yaml
import kubernetes.client.models as m

problems = []
KINDS = {("apps/v1", "StatefulSet"): "V1StatefulSet", ("apps/v1", "Deployment"): "V1Deployment",
         ("v1", "Service"): "V1Service", ("v1", "Secret"): "V1Secret",
         ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim", ("v1", "ConfigMap"): "V1ConfigMap"}


def check(doc, type_name, where):
    """The object against its schema (the client's pydantic model, extra fields forbidden)."""
    try:
        getattr(m, type_name).model_validate(doc)
    except Exception as e:  # pydantic.ValidationError: every field that is wrong, by path
        problems.append(f"{where}: {e}")


def iscp_parses(binary, argv, where):
    if not argv or argv[0] != "iscp":
        argv = ["iscp"] + list(argv)
    r = subprocess.run([binary] + [str(a) for a in argv[1:]] + ["--help"], capture_output=True, text=True)
    if r.returncode != 0:
        problems.append(f"{where}: `{' '.join(map(str, argv))}` does not parse: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else r.returncode}")


def flag(argv, name):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def k8s_commands(binary, obj, where):
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    for c in pod.get("containers", []):
        args = list(c.get("command", [])) + list(c.get("args", []))
        if args and args[0] != "iscp" and "iscp" in c.get("image", ""):
            args = ["iscp"] + args
        if args:
            iscp_parses(binary, args, f"{where} container {c['name']}")
        for probe in ("readinessProbe", "livenessProbe"):
            cmd = c.get(probe, {}).get("exec", {}).get("command")
            if cmd:
                iscp_parses(binary, cmd, f"{where} {probe}")
        mounts = {v["mountPath"] for v in c.get("volumeMounts", [])}
        for f in ("--state", "--results", "--cache"):
            d = flag(args, f)
            if d and d not in mounts:
                problems.append(f"{where}: {f} {d} is not a mounted volume")
        grace = flag(args, "--grace-s")
        period = pod.get("terminationGracePeriodSeconds", 30)
        if grace and float(grace) >= period:
            problems.append(f"{where}: terminationGracePeriodSeconds {period} is not above --grace-s {grace}: "
                            "Kubernetes would kill the worker before it hands its units back")
        tf = flag(args, "--token-file")
        if tf and not any(tf.startswith(mp.rstrip("/") + "/") for mp in mounts):
            problems.append(f"{where}: --token-file {tf} is not under a mounted volume")


def main():
    binary, k8s_dir, compose = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    for f in sorted(k8s_dir.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(f.read_text())):
            if doc is None:
                continue
            key = (doc.get("apiVersion"), doc.get("kind"))
            where = f"{f.name}#{i} {key[1]} {doc.get('metadata', {}).get('name')}"
            if key not in KINDS:
                problems.append(f"{where}: unknown apiVersion/kind {key}")
                continue
            check(doc, KINDS[key], where)
            k8s_commands(binary, doc, where)
            print(f"checked {where}")
    c = yaml.safe_load(compose.read_text())
    for name, svc in (c.get("services") or {}).items():
        where = f"{compose.name} service {name}"
        cmd = svc.get("command")
        if isinstance(cmd, str):
            cmd = cmd.split()
        if cmd:
            iscp_parses(binary, cmd, where)
        test = (svc.get("healthcheck") or {}).get("test")
        if test:
            if test[0] in ("CMD", "CMD-SHELL"):
                test = test[1:]
            iscp_parses(binary, test, f"{where} healthcheck")
        mounts = {v.split(":")[1] for v in svc.get("volumes", []) if isinstance(v, str) and ":" in v}
        for f in ("--state", "--results", "--cache"):
            d = flag(cmd or [], f)
            if d and d not in mounts:
                problems.append(f"{where}: {f} {d} is not a mounted volume")
        grace = flag(cmd or [], "--grace-s")
        stop = str(svc.get("stop_grace_period", "10s"))
        stop_s = float(stop[:-1]) * (60 if stop.endswith("m") else 1) if stop[-1] in "sm" else float(stop)
        if grace and float(grace) >= stop_s:
            problems.append(f"{where}: stop_grace_period {stop} is not above --grace-s {grace}")
        print(f"checked {where}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
