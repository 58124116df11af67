"""The ``alarms:`` section of the server configuration (docs/alarms.md)::

alarms:
  keep_cleared: 1d          # cleared alarms stay in the list this long, then the purge removes them
  sweep_interval: 10s       # how often alarms whose auto_clear time passed are cleared
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from linkserver.loading.sections import duration, section, setting


@section("alarms")
@attrs.frozen(kw_only=True)
class AlarmSettings:
    """The alarm list: how long cleared alarms are kept and how often auto_clear is applied."""

    keep_cleared: timedelta = setting(
        timedelta(days=1), duration(), doc="how long a cleared alarm stays in the list before the purge"
    )
    sweep_interval: timedelta = setting(
        timedelta(seconds=10), duration(), doc="how often alarms past their auto_clear time are cleared"
    )
