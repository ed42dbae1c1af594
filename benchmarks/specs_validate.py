"""Payload validation cost per interface (runs on every intake and every simulator request).

Anchor: json.loads of the same payload, measured in the same run (validation should cost about
as much as parsing the JSON it checks)."""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hospital_interop.municipal.specs import load_catalogue


def per_call(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main():
    cat = load_catalogue()
    print(f"{'interface':<22} {'fields':>6} {'validate µs':>12} {'json.loads µs':>14} {'ratio':>6}")
    for code in ("OP_VISIT", "IP_ADMISSION_RECORD", "LAB_REPORT_DETAIL", "IP_FRONT_PAGE", "LAB_REPORT_PDF"):
        spec = cat.interface(code)
        payload = spec.example(1)
        text = json.dumps(payload, ensure_ascii=False)
        assert spec.validate(payload) == []
        n = 2000 if code != "LAB_REPORT_PDF" else 300
        v = per_call(lambda spec=spec, payload=payload: spec.validate(payload), n)
        j = per_call(lambda text=text: json.loads(text), n)
        print(f"{code:<22} {spec.field_count():>6} {v * 1e6:>12.1f} {j * 1e6:>14.1f} {v / j:>6.2f}")


if __name__ == "__main__":
    main()
