#!/usr/bin/env python3
"""Compares kube9-operator assess with checkov over a directory of manifests, concept by
concept, and times both in the same run. Not part of CI: checkov is a benchmark input.

    python3 -m venv /tmp/venv-checkov && /tmp/venv-checkov/bin/pip install checkov==3.3.30
    cargo build --release -p kube9-operator
    python3 tests/benches/checkov_compare.py --kube9 target/release/kube9-operator \
        --checkov /tmp/venv-checkov/bin/checkov ../shared/fixtures/realcorpus

Prints a Markdown report: per concept, how many objects (a workload, a Pod, ...) each tool
flags, how many both flag, and every object checkov flags that kube9 does not (with its file
and line), so each disagreement can be explained. `--checkov-json FILE` reuses a saved
checkov report instead of running it (then checkov is not timed).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict

# concept -> (checkov check ids, kube9 check ids)
CONCEPTS = [
    ("privileged", ["CKV_K8S_16"], ["security.privileged"]),
    ("privilege escalation", ["CKV_K8S_20"], ["security.privilege-escalation"]),
    ("run as non-root", ["CKV_K8S_23"], ["security.run-as-non-root"]),
    ("high UID", ["CKV_K8S_40"], ["security.run-as-high-uid"]),
    ("read-only root filesystem", ["CKV_K8S_22"], ["security.read-only-root-filesystem"]),
    ("drop ALL (and NET_RAW)", ["CKV_K8S_37", "CKV_K8S_28"], ["security.drop-all-capabilities"]),
    ("host PID", ["CKV_K8S_17"], ["security.host-pid"]),
    ("host IPC", ["CKV_K8S_18"], ["security.host-ipc"]),
    ("host network", ["CKV_K8S_19"], ["security.host-network"]),
    ("host ports", ["CKV_K8S_26"], ["security.host-port"]),
    ("CPU requests", ["CKV_K8S_10"], ["performance-efficiency.cpu-requests"]),
    ("CPU limits", ["CKV_K8S_11"], []),
    ("memory requests", ["CKV_K8S_12"], ["performance-efficiency.memory-requests"]),
    ("memory limits", ["CKV_K8S_13"], ["performance-efficiency.memory-limits"]),
    ("liveness probe", ["CKV_K8S_8"], ["reliability.liveness-probe"]),
    ("readiness probe", ["CKV_K8S_9"], ["reliability.readiness-probe"]),
    ("image tag", ["CKV_K8S_14"], ["reliability.image-tag"]),
    ("image digest", ["CKV_K8S_43"], ["security.image-digest"]),
    ("imagePullPolicy Always", ["CKV_K8S_15"], []),
]


def rel(path, root):
    path = os.path.normpath(path)
    root = os.path.normpath(os.path.abspath(root))
    if path.startswith(root + os.sep):
        return path[len(root) + 1:]
    return path.lstrip("/")


def run_kube9(binary, root, saved):
    if saved:
        with open(saved) as f:
            report, elapsed = json.load(f), None
    else:
        start = time.monotonic()
        out = subprocess.run([binary, "assess", "-f", root, "-o", "json"], capture_output=True, text=True)
        elapsed = time.monotonic() - start
        if out.returncode not in (0, 1, 2):
            sys.exit(f"kube9-operator assess failed ({out.returncode}): {out.stderr}")
        report = json.loads(out.stdout)
    flagged = defaultdict(dict)
    for f in report["findings"] + report["exempted"]:
        o = f["object"]
        src = f.get("source") or {}
        key = (rel(src.get("path", ""), root), o["kind"], o.get("namespace") or "default", o["name"])
        flagged[f["checkId"]][key] = src.get("line")
    return flagged, elapsed, report


def run_checkov(binary, root, saved):
    if saved:
        with open(saved) as f:
            return json.load(f), None
    start = time.monotonic()
    out = subprocess.run(
        [binary, "-d", root, "--framework", "kubernetes", "-o", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True,
    )
    elapsed = time.monotonic() - start
    return json.loads(out.stdout), elapsed


def checkov_flags(report, root):
    reports = report if isinstance(report, list) else [report]
    flagged = defaultdict(dict)
    for r in reports:
        for f in r["results"]["failed_checks"]:
            kind, _, rest = f["resource"].partition(".")
            namespace, _, name = rest.partition(".")
            key = (rel(f["file_abs_path"], root), kind, namespace, name)
            flagged[f["check_id"]][key] = tuple(f["file_line_range"])
    return flagged


def same_object(checkov_key, line_range, kube9_flagged):
    """The kube9 key for the object checkov names differently (checkov names a Job that only has
    a generateName after one of its labels): same file and kind, kube9's line in checkov's range."""
    start, end = line_range
    for key, line in kube9_flagged.items():
        if key[0] == checkov_key[0] and key[1] == checkov_key[1] and line is not None and start <= line <= end:
            return key
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kube9", help="the kube9-operator binary")
    p.add_argument("--kube9-json", help="a saved `assess -o json` report to use instead of running kube9")
    p.add_argument("--checkov", default="checkov", help="the checkov executable")
    p.add_argument("--checkov-json", help="a saved checkov JSON report to use instead of running checkov")
    p.add_argument("--list", type=int, default=50, help="checkov-only objects listed per concept")
    p.add_argument("root")
    args = p.parse_args()

    if not args.kube9 and not args.kube9_json:
        p.error("give --kube9 (the binary) or --kube9-json (a saved report)")
    ours, ours_time, report = run_kube9(args.kube9, args.root, args.kube9_json)
    theirs_report, theirs_time = run_checkov(args.checkov, args.root, args.checkov_json)
    theirs = checkov_flags(theirs_report, args.root)

    print(f"# kube9-operator assess and checkov over `{args.root}`\n")
    timing = f"; {ours_time:.2f} s" if ours_time is not None else ""
    print(f"kube9: {report['inputs']['documents']} documents in {report['inputs']['files']} files, "
          f"{report['inputs'].get('unread', len(report['errors']))} unread{timing}")
    for e in report["errors"]:
        print(f"- unread: {rel(e['path'], args.root)}:{e.get('line')}: {e['message']}")
    if theirs_time is not None and ours_time is not None:
        print(f"checkov: {theirs_time:.1f} s ({theirs_time / ours_time:.0f}x kube9's time)")
    print()
    print("| concept | checkov | kube9 | both | checkov only | kube9 only |")
    print("|---|---|---|---|---|---|")
    details = []
    for concept, ckv, k9 in CONCEPTS:
        theirs_ranges = {k: r for c in ckv for k, r in theirs.get(c, {}).items()}
        ours_lines = {k: l for c in k9 for k, l in ours.get(c, {}).items()}
        a = set(theirs_ranges)
        b = set(ours_lines)
        for key in sorted(a - b):
            match = same_object(key, theirs_ranges[key], {k: l for k, l in ours_lines.items() if k not in a})
            if match is not None:
                a.discard(key)
                a.add(match)
        only_a = sorted(a - b)
        print(f"| {concept} ({', '.join(ckv)} / {', '.join(k9) or 'no check'}) | {len(a)} | {len(b)} | "
              f"{len(a & b)} | {len(only_a)} | {len(b - a)} |")
        if k9 and only_a:
            details.append((concept, only_a, theirs_ranges))
    for concept, only, ranges in details:
        print(f"\n## {concept}: flagged by checkov only ({len(only)})\n")
        for key in only[: args.list]:
            line = ranges.get(key, ("?",))[0]
            print(f"- {key[0]}:{line} {key[1]} {key[2]}/{key[3]}")
        if len(only) > args.list:
            print(f"- ... and {len(only) - args.list} more")


if __name__ == "__main__":
    main()
