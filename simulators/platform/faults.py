"""Run-time fault injection: what the simulator does wrong on purpose, and how often.

Faults live in the simulator database (so every worker thread and process sees the same ones)
and are drawn from one seeded RNG per process, so a sequential test run is reproducible.

When a fault fires, relative to the normal processing of a request:

==================  ======================================================================
``http_5xx``        before anything: HTTP 500, plain text, nothing stored
``rate_limit``      before anything: signed ``3001`` with ``data.retryAfter``, nothing stored
``error_5000``      before anything: signed ``5000``, nothing stored
``latency_ms``      every request waits this long before being answered
``timeout``         processed normally (an upload IS stored), then held ``timeout_seconds``
                    before the answer: a lost response, as a real platform produces one. The
                    client gives up and retries; the retry replaces the record (version + 1),
                    which is exactly the idempotency the protocol promises.
``bad_signature``   processed normally (stored), answer signature corrupted
``unsigned``        processed normally (stored), answer sent without ``sign``
``force_code``      when set (e.g. "9999"), every request is answered with this signed code
                    before anything else (codes the client does not know, table tests)
``clock_skew_s..``  the platform clock runs this many seconds off (both for checking request
                    timestamps and for the timestamp service)
``reject_keys``     uploads whose business key (``orgCode|reportId``) is listed are answered
                    ``2001`` with a field error (the "injected validation errors")
==================  ======================================================================

``services`` (a list of service codes) limits the HTTP-level faults (5xx, rate limit, 5000,
latency, timeout, bad signature, unsigned, forced code) to those services; empty means all of them.

``interfaces`` holds the switches of one interface each (what the joint-debugging console turns on
and off): ``{"LAB_REPORT_DETAIL": {"http_5xx": 1, "timeout": 1, "rate_limit": 1,
"reject_field": "reportId", "clock_skew_seconds": 600}}``. A rate there adds to the global one for
that interface (the higher wins); ``reject_field`` answers every request of the interface ``2001``
with an error on that field (after the envelope is opened, before the interface's own processing);
``clock_skew_seconds`` replaces the global skew for that interface's requests and answers only (the
timestamp service keeps the global clock, so a client's time refresh does not cure it).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, field, fields

RATES = ("http_5xx", "timeout", "rate_limit", "error_5000", "bad_signature", "unsigned")
INTERFACE_RATES = ("http_5xx", "timeout", "rate_limit")  # per-interface switches (see the module doc)
INTERFACE_FAULTS = (*INTERFACE_RATES, "reject_field", "clock_skew_seconds")


@dataclass(frozen=True)
class Faults:
    http_5xx: float = 0.0
    timeout: float = 0.0
    timeout_seconds: float = 15.0
    rate_limit: float = 0.0
    retry_after: float = 1.0
    error_5000: float = 0.0
    bad_signature: float = 0.0
    unsigned: float = 0.0
    force_code: str = ""
    latency_ms: float = 0.0
    clock_skew_seconds: float = 0.0
    reject_keys: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    interfaces: dict = field(default_factory=dict)  # service code -> {switch: value}
    seed: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> Faults:
        """Validate a JSON mapping; ValueError with a Chinese message naming the bad keys."""
        if not isinstance(d, dict):
            raise ValueError("故障配置必须是 JSON 对象")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"未知的故障项：{', '.join(unknown)}；可用：{', '.join(sorted(known))}")
        kwargs: dict = {}
        problems = []
        for name, value in d.items():
            if name in ("reject_keys", "services"):
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    problems.append(f"{name} 必须是字符串列表")
                    continue
                kwargs[name] = tuple(value)
            elif name == "force_code":
                if not isinstance(value, str) or (value and not (value.isascii() and value.isdigit())):
                    problems.append("force_code 必须是数字字符串（空字符串表示关闭）")
                    continue
                kwargs[name] = value
            elif name == "interfaces":
                try:
                    kwargs[name] = _interface_faults(value)
                except ValueError as exc:
                    problems.append(str(exc))
                    continue
            elif name == "seed":
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    problems.append("seed 必须是整数或 null")
                    continue
                kwargs[name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    problems.append(f"{name} 必须是数值")
                    continue
                if name in RATES and not 0 <= value <= 1:
                    problems.append(f"{name} 是概率，必须在 [0, 1] 之间")
                    continue
                if name not in RATES and name != "clock_skew_seconds" and value < 0:
                    problems.append(f"{name} 不能为负数")
                    continue
                kwargs[name] = float(value)
        if problems:
            raise ValueError("；".join(problems))
        return cls(**kwargs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reject_keys"] = list(self.reject_keys)
        d["services"] = list(self.services)
        d["interfaces"] = {code: dict(switches) for code, switches in self.interfaces.items()}
        return d

    def applies_to(self, service: str) -> bool:
        return not self.services or service in self.services

    def rate(self, name: str, service: str) -> float:
        """The probability of fault ``name`` for a request of ``service`` (global and per interface)."""
        rate = getattr(self, name) if self.applies_to(service) else 0.0
        return max(rate, self.interfaces.get(service, {}).get(name, 0.0))

    def clock_skew_for(self, service: str | None) -> float:
        switches = self.interfaces.get(service, {}) if service else {}
        return switches.get("clock_skew_seconds", self.clock_skew_seconds)

    def reject_field(self, service: str) -> str:
        """The field of the injected validation error of ``service`` ("" when switched off)."""
        return self.interfaces.get(service, {}).get("reject_field", "")


def _interface_faults(value) -> dict:
    """Validate ``interfaces``: {service code: {switch: value}}; switches set to 0/""/null are dropped."""
    if not isinstance(value, dict):
        raise ValueError("interfaces 必须是 {服务代码: {故障项: 值}} 形式的对象")
    out: dict[str, dict] = {}
    for code, switches in value.items():
        if not isinstance(switches, dict):
            raise ValueError(f"interfaces.{code} 必须是对象")
        unknown = sorted(set(switches) - set(INTERFACE_FAULTS))
        if unknown:
            raise ValueError(
                f"interfaces.{code} 有未知的故障项：{', '.join(unknown)}；可用：{', '.join(INTERFACE_FAULTS)}"
            )
        clean: dict = {}
        for name, v in switches.items():
            if v is None or v == "" or v == 0:
                continue
            if name == "reject_field":
                if not isinstance(v, str) or len(v) > 200:
                    raise ValueError(f"interfaces.{code}.reject_field 必须是字段名（字符串）")
                clean[name] = v
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"interfaces.{code}.{name} 必须是数值")
            if name in INTERFACE_RATES and not 0 <= v <= 1:
                raise ValueError(f"interfaces.{code}.{name} 是概率，必须在 [0, 1] 之间")
            clean[name] = float(v)
        if clean:
            out[str(code)] = clean
    return out


@dataclass
class Draw:
    """The faults that fire for one request."""

    http_5xx: bool = False
    rate_limit: bool = False
    error_5000: bool = False
    timeout: bool = False
    bad_signature: bool = False
    unsigned: bool = False
    fired: list[str] = field(default_factory=list)


class FaultState:
    """This process's view of the faults in the store, plus its RNG."""

    def __init__(self, store, seed: int | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._generation = -1
        self._faults = Faults()
        self._base_seed = seed
        self._rng = random.Random(seed)

    def current(self) -> Faults:
        body, generation = self._store.faults_row()
        if generation != self._generation:
            with self._lock:
                if generation != self._generation:
                    try:
                        faults = Faults.from_dict(body)
                    except ValueError:
                        faults = Faults()
                    if faults.seed is not None:  # every new fault set with a seed restarts its sequence
                        self._rng = random.Random(faults.seed)
                    self._faults, self._generation = faults, generation
        return self._faults

    def reseed(self) -> None:
        with self._lock:
            self._rng = random.Random(self._faults.seed if self._faults.seed is not None else self._base_seed)

    def draw(self, faults: Faults, service: str) -> Draw:
        d = Draw()
        if not faults.applies_to(service) and service not in faults.interfaces:
            return d
        with self._lock:
            for name in RATES:
                rate = faults.rate(name, service)
                if rate > 0 and self._rng.random() < rate:
                    setattr(d, name, True)
                    d.fired.append(name)
        return d
