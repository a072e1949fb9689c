# ruff: noqa: RUF001  (Chinese text takes full-width punctuation)
"""Every string the public portal shows, in Simplified Chinese (the default) and English.

Templates never hold words of their own: they call ``t(key, **values)``. Both
catalogues have the same keys (a test holds that); ``translate`` falls back to the
key itself rather than failing a page over a missing string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULT = "zh-CN"

ZH: dict[str, str] = {
    "app.title": "公共数据授权运营公开平台",
    "app.tagline": "授权运营情况与公共数据资源使用情况年度披露",
    "nav.home": "首页",
    "nav.products": "产品和服务清单",
    "nav.grants": "授权对象",
    "nav.usage": "数据使用情况",
    "nav.label": "栏目",
    "nav.switch": "English",
    "skip": "跳到正文",
    "year.label": "披露年度",
    "year.submit": "查看",
    "year.shown": "{year} 年度",
    "home.title": "公共数据授权运营公开信息",
    "home.intro": (
        "依照《重庆市公共数据资源授权运营管理实施办法（试行）》第二十四条、第二十五条和"
        "《成都市公共数据资源授权运营实施细则》第三十条，实施机构按年度向社会披露授权对象、"
        "内容、范围和时限，运营机构公开公共数据产品和服务清单并披露公共数据资源使用情况，"
        "接受社会监督。"
    ),
    "home.privacy": (
        "本平台只公开产品、授权和使用的元数据与统计数字，不含任何个人或单位的数据值，"
        "无需登录，不使用 Cookie。"
    ),
    "home.products": (
        "已登记的公共数据产品和服务，按公共治理、公益事业和产业、行业发展两类列出，并注明价格依据。"
    ),
    "home.grants": "被授权的运营机构、授权的场景与用途、数据范围（数据集与字段）、期限与状态。",
    "home.usage": "按运营机构和数据集统计的授权数、作业数、放行输出数和登记产品数。",
    "home.counts": "本年度：产品 {products} 个，授权 {grants} 项，数据使用记录 {usage} 条。",
    "data.title": "开放数据",
    "data.hint": "每张表均提供 JSON 和 CSV（UTF-8，含 BOM，可直接用 Excel 打开）。",
    "data.json": "JSON",
    "data.csv": "CSV",
    "data.of": "{table}：",
    "products.title": "公共数据产品和服务清单",
    "products.hint": (
        "公共治理、公益事业类产品有条件无偿使用；产业发展、行业发展类产品实行政府指导价管理，"
        "按“补偿成本、合理盈利”原则定价（第二十六条）。"
    ),
    "products.public_governance": "公共治理、公益事业类",
    "products.industry_development": "产业发展、行业发展类",
    "products.caption": "{cls}产品（{year} 年度，{n} 个）",
    "products.empty": "本年度没有此类登记产品。",
    "products.code": "登记编号",
    "products.name": "名称",
    "products.operator": "运营机构",
    "products.datasets": "数据来源",
    "products.kind": "形态",
    "products.price": "价格类别与依据",
    "products.status": "状态",
    "products.validity": "有效期",
    "kind.file": "数据文件",
    "kind.verify": "密态核验",
    "kind.score": "密态评分",
    "price.free": "无偿",
    "price.conditionally_free": "有条件无偿：{condition}",
    "price.guided": "政府指导价：{item}，{price} 元/{unit}",
    "price.guided_unknown": "政府指导价：{item}",
    "price.cost_plus": "成本加合理利润：{price} 元/{unit}（利润率 {margin}%）",
    "price.cost_plus_unknown": "成本加合理利润（利润率 {margin}%）",
    "price.unit": "次",
    "status.registered": "有效",
    "status.expired": "已到期",
    "status.cancelled": "已注销",
    "status.revoked": "已撤销",
    "status.since": "（{date}）",
    "grants.title": "授权对象、内容、范围和时限",
    "grants.hint": "本年度内任一时间有效的授权；已撤销、到期或终止的授权注明结束日期。",
    "grants.caption": "{year} 年度的授权（{n} 项）",
    "grants.empty": "本年度没有有效的授权。",
    "grants.grantee": "授权对象",
    "grants.scenario": "场景（内容）",
    "grants.purpose": "用途",
    "grants.scope": "范围：数据集与字段",
    "grants.term": "期限",
    "grants.state": "状态",
    "state.active": "有效",
    "state.suspended": "暂停",
    "state.revoked": "已撤销",
    "state.expired": "已到期",
    "state.ended": "{state}（{date}）",
    "usage.title": "公共数据资源使用情况",
    "usage.hint": (
        "按运营机构和数据集统计：有效授权数、在沙箱中运行的作业数（不含模拟数据试运行）、"
        "经审核放行的作业数、本年度登记的产品数。不含任何数据值。"
    ),
    "usage.caption": "{year} 年度的数据使用（{n} 条）",
    "usage.empty": "本年度没有数据使用记录。",
    "usage.grantee": "运营机构",
    "usage.dataset": "数据集",
    "usage.provider": "数据提供单位",
    "usage.grants": "授权数",
    "usage.jobs": "作业数",
    "usage.released": "放行数",
    "usage.products": "登记产品数",
    "term.range": "{start} 至 {end}",
    "error.title": "无法显示此页",
    "error.year": "年度无效：请填写 2000 至 2200 之间的年份。",
    "footer": (
        "依据：重庆市公共数据资源授权运营管理实施办法（试行）第二十四至二十六条；"
        "成都市公共数据资源授权运营实施细则第三十条。"
    ),
}

EN: dict[str, str] = {
    "app.title": "Public data authorized operation: public portal",
    "app.tagline": "Yearly disclosure of grants and of the use of public data",
    "nav.home": "Home",
    "nav.products": "Products and services",
    "nav.grants": "Grantees",
    "nav.usage": "Data use",
    "nav.label": "Sections",
    "nav.switch": "中文",
    "skip": "Skip to content",
    "year.label": "Year disclosed",
    "year.submit": "Show",
    "year.shown": "Year {year}",
    "home.title": "Public information on the authorized operation of public data",
    "home.intro": (
        "Under articles 24 and 25 of the Chongqing authorized-operation measures and article 30 "
        "of the Chengdu implementation rules, the implementing agency discloses every year the "
        "grantees, the content, scope and term of their grants, and the operators publish their "
        "list of public data products and services and disclose their use of public data, for "
        "public supervision."
    ),
    "home.privacy": (
        "This portal shows metadata and counts only: no value of any person or organisation's "
        "data. No sign-in, no cookies."
    ),
    "home.products": "Registered public data products and services in their two classes, with "
    "the basis of their price.",
    "home.grants": "The operators granted public data: scenario and purpose, scope (datasets "
    "and columns), term and state.",
    "home.usage": "Grants, jobs, released outputs and registered products, per operator and "
    "dataset.",
    "home.counts": "This year: {products} products, {grants} grants, {usage} lines of data use.",
    "data.title": "Open data",
    "data.hint": "Every table as JSON and as CSV (UTF-8 with a BOM: Excel opens it directly).",
    "data.json": "JSON",
    "data.csv": "CSV",
    "data.of": "{table}: ",
    "products.title": "Public data products and services",
    "products.hint": (
        "Products for public governance and public welfare are free or conditionally free; "
        "products for industry and sector development are priced at a government-guided price "
        "or at cost plus a reasonable profit (article 26)."
    ),
    "products.public_governance": "Public governance and public welfare",
    "products.industry_development": "Industry and sector development",
    "products.caption": "{cls} products ({year}, {n})",
    "products.empty": "No product of this class was registered this year.",
    "products.code": "Registration code",
    "products.name": "Name",
    "products.operator": "Operator",
    "products.datasets": "Data sources",
    "products.kind": "Form",
    "products.price": "Price class and basis",
    "products.status": "Status",
    "products.validity": "Valid",
    "kind.file": "Data file",
    "kind.verify": "Encrypted verification",
    "kind.score": "Encrypted scoring",
    "price.free": "Free",
    "price.conditionally_free": "Conditionally free: {condition}",
    "price.guided": "Government-guided price: {item}, CNY {price} per {unit}",
    "price.guided_unknown": "Government-guided price: {item}",
    "price.cost_plus": "Cost plus a reasonable profit: CNY {price} per {unit} (margin {margin}%)",
    "price.cost_plus_unknown": "Cost plus a reasonable profit (margin {margin}%)",
    "price.unit": "use",
    "status.registered": "Valid",
    "status.expired": "Expired",
    "status.cancelled": "Cancelled",
    "status.revoked": "Revoked",
    "status.since": " ({date})",
    "grants.title": "Grantees: content, scope and term",
    "grants.hint": "Grants in force at some time of the year; a revoked, expired or terminated "
    "grant shows when it ended.",
    "grants.caption": "Grants of {year} ({n})",
    "grants.empty": "No grant was in force this year.",
    "grants.grantee": "Grantee",
    "grants.scenario": "Scenario (content)",
    "grants.purpose": "Purpose",
    "grants.scope": "Scope: datasets and columns",
    "grants.term": "Term",
    "grants.state": "State",
    "state.active": "In force",
    "state.suspended": "Suspended",
    "state.revoked": "Revoked",
    "state.expired": "Expired",
    "state.ended": "{state} ({date})",
    "usage.title": "Use of public data",
    "usage.hint": (
        "Per operator and dataset: grants in force, jobs run in the sandbox (not counting runs "
        "on dummy data), jobs released after the checks, products registered this year. No "
        "data values."
    ),
    "usage.caption": "Data use in {year} ({n})",
    "usage.empty": "No data was used this year.",
    "usage.grantee": "Operator",
    "usage.dataset": "Dataset",
    "usage.provider": "Provider",
    "usage.grants": "Grants",
    "usage.jobs": "Jobs",
    "usage.released": "Released",
    "usage.products": "Products",
    "term.range": "{start} to {end}",
    "error.title": "This page cannot be shown",
    "error.year": "Not a valid year: give a year from 2000 to 2200.",
    "footer": "Basis: Chongqing authorized-operation measures art. 24-26; Chengdu implementation "
    "rules art. 30.",
}

CATALOGUES: dict[str, dict[str, str]] = {"zh-CN": ZH, "en": EN}


def pick(candidate: str | None) -> str:
    """``candidate`` when it names a supported language, else the default."""
    return candidate if candidate in CATALOGUES else DEFAULT


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the string for ``key`` in ``lang`` (the key when missing)."""
    catalogue = CATALOGUES.get(lang, ZH)

    def t(key: str, **values: Any) -> str:
        text = catalogue.get(key, key)
        return text.format(**values) if values else text

    return t
