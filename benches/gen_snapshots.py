#!/usr/bin/env python3
"""NDJSON input for the `tagwire encode` vs serde transcoder comparison
(docs/benchmarks.md): N snapshots of T tags, a mix of INT16, INT32, FLOAT (with a
precision on some), DOUBLE, BOOL and STRING, a few error tags. Deterministic.

    python3 benches/gen_snapshots.py 20000 100 > target/snap20k.ndjson
"""
import json
import sys

n, t = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
for i in range(n):
    tags = []
    for k in range(t):
        name = f"tag{k:04d}"
        kind = k % 8
        if kind == 0:
            tags.append({"name": name, "type": "INT16", "value": (i * 7 + k) % 30000 - 15000})
        elif kind == 1:
            tags.append({"name": name, "type": "INT32", "value": i * 1000 + k})
        elif kind == 2:
            tags.append({"name": name, "type": "FLOAT", "value": round(20 + (i % 100) * 0.37 + k * 0.01, 3)})
        elif kind == 3:
            tags.append({"name": name, "type": "DOUBLE", "value": (i + 1) * 1.000123 + k, "precision": 2})
        elif kind == 4:
            tags.append({"name": name, "type": "BOOL", "value": (i + k) % 2 == 0})
        elif kind == 5:
            tags.append({"name": name, "type": "STRING", "value": f"state-{(i + k) % 13}"})
        elif kind == 6:
            tags.append({"name": name, "type": "DOUBLE", "value": i * 0.5 + k / 3})
        elif i % 10 == 0:
            tags.append({"name": name, "error": 3002})
        else:
            tags.append({"name": name, "type": "UINT16", "value": (i + k) % 65535})
    snap = {"node": "plc-1", "group": f"grp{i % 10}", "timestamp": 1650006388943 + i, "tags": tags}
    out.write(json.dumps(snap, separators=(",", ":")) + "\n")
