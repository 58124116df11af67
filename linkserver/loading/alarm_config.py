"""The ``alarms:`` section of the server configuration (docs/alarms.md)::

alarms:
  keep_cleared: 1d          # cleared alarms stay in the list this long, then they are removed
  sweep_interval: 10s       # how often alarms whose auto_clear time passed are cleared
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from linkserver.loading.sections import duration, section, setting

MIN_REMOVAL_INTERVAL = timedelta(seconds=1)
MAX_REMOVAL_INTERVAL = timedelta(minutes=1)


@section("alarms")
@attrs.frozen(kw_only=True)
class AlarmSettings:
    """The alarm list: how long cleared alarms are kept and how often auto_clear is applied."""

    keep_cleared: timedelta = setting(
        timedelta(days=1), duration(), doc="how long a cleared alarm stays in the list before it is removed"
    )
    sweep_interval: timedelta = setting(
        timedelta(seconds=10), duration(), doc="how often alarms past their auto_clear time are cleared"
    )

    @property
    def removal_interval(self) -> timedelta:
        """How often the server removes cleared alarms older than ``keep_cleared``: a tenth of
        ``keep_cleared``, at least 1 s and at most 1 min. A cleared alarm is listed from
        ``keep_cleared`` to ``keep_cleared`` plus this after its clear (30 s: 30 to 33 s; 1 d:
        up to a minute more), whatever ``history.purge.interval`` is."""
        return min(max(self.keep_cleared / 10, MIN_REMOVAL_INTERVAL), MAX_REMOVAL_INTERVAL)
