"""The CA parameters of the unified code table (统一代码表), as data: code, label, default, check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse


def _flag(v: str) -> tuple[str, str] | None:
    return None if v in ("0", "1") else ("choice", "只能为 0（禁用）或 1（启用）。")


def _url(v: str) -> tuple[str, str] | None:
    if not v:
        return None
    u = urlparse(v)
    if u.scheme not in ("http", "https") or not u.netloc:
        return "url", "应为以 http:// 或 https:// 开头的完整地址。"
    return None


def _app_id(v: str) -> tuple[str, str] | None:
    if v and not (2 <= len(v) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_.") for c in v)):
        return "format", "应用 ID 应为 2–64 位字母、数字、连字符、下划线或点。"
    return None


def _secret(v: str) -> tuple[str, str] | None:
    if v and len(v) < 8:
        return "length", "验证密钥至少 8 位。"
    return None


def _algorithm(v: str) -> tuple[str, str] | None:
    return None if v in ("HMAC-SM3", "HMAC-SHA256") else ("choice", "只能为 HMAC-SM3 或 HMAC-SHA256。")


def origins(v: str) -> list[str]:
    """The origins of a space- or comma-separated list (as LIS_SIGN_ORIGINS holds them)."""
    return [o for o in v.replace(",", " ").split() if o]


def _origins(v: str) -> tuple[str, str] | None:
    for o in origins(v):
        u = urlparse(o)
        if u.scheme not in ("http", "https") or not u.netloc or u.path or u.query or u.fragment:
            return "origin", f"{o} 不是源：应为 http(s)://主机[:端口]，不带路径，多个用空格分隔。"
    return None


@dataclass(frozen=True)
class Parameter:
    key: str
    label: str
    description: str
    default: str = ""
    secret: bool = False
    check: Callable[[str], tuple[str, str] | None] | None = None


PARAMETERS = (
    Parameter(
        "CA_ENABLED", "CA 是否启用", "0 禁用，1 启用。禁用时报告审核不进行电子签名。", "0", check=_flag
    ),
    Parameter(
        "CA_QR_URL",
        "CA 二维码服务 URL",
        "扫码登录、自动签名授权与移动证书下载所用的服务地址；为空时使用签名服务器地址。",
        check=_url,
    ),
    Parameter("CA_APP_ID", "CA 应用系统 ID", "签名服务器为本系统分配的应用标识（appId）。", check=_app_id),
    Parameter(
        "CA_SECRET",
        "CA 验证密钥",
        "签名服务器分配的验证密钥，用于请求签名（加密存储，仅显示掩码）。",
        secret=True,
        check=_secret,
    ),
    Parameter(
        "CA_SIGN_ALG",
        "请求签名算法",
        "HMAC-SM3（卫生健康行业 CA 服务规范）或 HMAC-SHA256（部分厂商）。",
        "HMAC-SM3",
        check=_algorithm,
    ),
    Parameter(
        "UKEY_AGENT_URL",
        "UKey 客户端服务地址",
        "管理机上 UKey 客户端的本机服务地址。",
        "http://127.0.0.1:8710",
        check=_url,
    ),
    Parameter(
        "LIS_SIGN_ORIGINS",
        "LIS 签名页允许的源",
        "LIS 审核界面的源（如 https://lis.hospital.local，多个用空格分隔）：嵌入式签名页只允许被这些源嵌入，"
        "只向这些源返回签名结果。为空时不能生成签名页链接。",
        check=_origins,
    ),
)
BY_KEY = {p.key: p for p in PARAMETERS}
