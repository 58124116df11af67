"""LinkServer: an event server organised as a tree of contexts.

Everything listed in ``__all__`` is the public API; every other module may
change between releases.
"""

__version__ = "0.1.0"

from linkserver._lazy import lazy_exports

# Names are imported on first use, so that `import linkserver.core` stays free of
# SQLAlchemy, APScheduler and the rest.
_WHERE = {
    "Catalog": "linkserver.core.catalog",
    "ContextSpec": "linkserver.core.catalog",
    "DefinitionSet": "linkserver.core.catalog",
    "EventDefinition": "linkserver.core.definitions",
    "ConfigError": "linkserver.core.errors",
    "ContextExists": "linkserver.core.errors",
    "ContextNotFound": "linkserver.core.errors",
    "DataTableError": "linkserver.core.errors",
    "EventNotDefined": "linkserver.core.errors",
    "EventNotFound": "linkserver.core.errors",
    "FieldError": "linkserver.core.errors",
    "FilterError": "linkserver.core.errors",
    "HistoryError": "linkserver.core.errors",
    "InvalidDefinition": "linkserver.core.errors",
    "InvalidName": "linkserver.core.errors",
    "LinkServerError": "linkserver.core.errors",
    "PermissionDenied": "linkserver.core.errors",
    "DeviceOwned": "linkserver.core.errors",
    "ServerStopped": "linkserver.core.errors",
    "TemplateNotFound": "linkserver.core.errors",
    "Category": "linkserver.core.categories",
    "InvalidCategory": "linkserver.core.categories",
    "Acknowledgement": "linkserver.core.events",
    "Event": "linkserver.core.events",
    "ExpirationRule": "linkserver.core.expiration",
    "ExpirationTable": "linkserver.core.expiration",
    "Filter": "linkserver.core.filters",
    "parse_filter": "linkserver.core.filters",
    "Field": "linkserver.core.formats",
    "FieldType": "linkserver.core.formats",
    "TableFormat": "linkserver.core.formats",
    "Level": "linkserver.core.levels",
    "Permission": "linkserver.core.levels",
    "compile_mask": "linkserver.core.paths",
    "Grants": "linkserver.core.permissions",
    "Principal": "linkserver.core.permissions",
    "Context": "linkserver.core.tree",
    "ContextTree": "linkserver.core.tree",
    "HistoryPage": "linkserver.history.base",
    "HistoryQuery": "linkserver.history.base",
    "HistoryStore": "linkserver.history.base",
    "StoredContext": "linkserver.history.tree",
    "TreeStore": "linkserver.history.tree",
    "LinkServer": "linkserver.server.app",
    "DeviceController": "linkserver.server.controllers",
    "DeviceHandle": "linkserver.server.controllers",
    "Gap": "linkserver.server.delivery",
    "Subscription": "linkserver.server.delivery",
    "UnrecordableContext": "linkserver.server.stored_tree",
    "Engine": "linkserver.server.engine",
    "CapturingListener": "linkserver.testing",
    "RunningServer": "linkserver.testing",
}


__getattr__, __dir__ = lazy_exports("linkserver", _WHERE, globals())

__all__ = [
    # the server and the engine
    "LinkServer",
    "Engine",
    "Subscription",
    "Gap",
    "DeviceController",
    "DeviceHandle",
    # the model
    "Event",
    "Acknowledgement",
    "EventDefinition",
    "Category",
    "TableFormat",
    "Field",
    "FieldType",
    "Level",
    "Permission",
    "Grants",
    "Principal",
    "Context",
    "ContextTree",
    "DefinitionSet",
    "ContextSpec",
    "Catalog",
    "ExpirationRule",
    "ExpirationTable",
    "Filter",
    "parse_filter",
    "compile_mask",
    # history
    "HistoryStore",
    "HistoryQuery",
    "HistoryPage",
    "TreeStore",
    "StoredContext",
    # testing
    "CapturingListener",
    "RunningServer",
    # errors
    "LinkServerError",
    "InvalidName",
    "InvalidDefinition",
    "ContextNotFound",
    "ContextExists",
    "TemplateNotFound",
    "EventNotDefined",
    "FieldError",
    "DataTableError",
    "FilterError",
    "InvalidCategory",
    "PermissionDenied",
    "DeviceOwned",
    "ConfigError",
    "HistoryError",
    "EventNotFound",
    "ServerStopped",
    "UnrecordableContext",
]
