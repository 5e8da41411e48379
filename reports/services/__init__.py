"""Reports: invoicing (usage in GB-months and cost) and monthly statistics."""

from reports.services.dispatch import DispatchResult, usage_report_send
from reports.services.months import month_last, month_parse, month_range, month_str
from reports.services.stats import stats_compute, stats_snapshot_data, stats_snapshot_take
from reports.services.usage import (
    UsageReport,
    usage_report,
    usage_report_csv,
    usage_report_data,
    usage_report_filename,
    usage_report_for_rows,
)

__all__ = [
    "DispatchResult",
    "UsageReport",
    "month_last",
    "month_parse",
    "month_range",
    "month_str",
    "stats_compute",
    "stats_snapshot_data",
    "stats_snapshot_take",
    "usage_report",
    "usage_report_csv",
    "usage_report_data",
    "usage_report_filename",
    "usage_report_for_rows",
    "usage_report_send",
]
