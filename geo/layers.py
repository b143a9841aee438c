"""Layer schemas: the single source of truth for fields, types and vocabularies.

Longer than ~600 lines on purpose: every layer's fields sit together here, so one file
answers "what does the store hold" and nothing repeats the schema elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field

SECTORS: tuple[str, ...] = (
    "machine",
    "materials",
    "food",
    "pharma",
    "chemicals",
    "light",
    "logistics",
    "energy",
)
ASSET_STATUSES: tuple[str, ...] = (
    "operational",
    "restricted",
    "closed",
    "under_repair",
    "not_commissioned",
    "planned",
)
PLOT_STATUSES: tuple[str, ...] = ("candidate", "available", "reserved", "allocated", "occupied")
# Legal moves along the plot lifecycle; a reservation can fall through and go back.
PLOT_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("available",),
    "available": ("reserved", "candidate"),
    "reserved": ("allocated", "available"),
    "allocated": ("occupied", "available"),
    "occupied": ("available",),
}
APPLICATION_STATUSES: tuple[str, ...] = ("submitted", "reserved", "rejected", "withdrawn")
JOB_STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
ROLES: tuple[str, ...] = ("investor", "planner", "admin")
FIELD_TYPES: tuple[str, ...] = ("str", "int", "float", "bool", "date", "datetime")
# One rule for ids and text, applied by every entry point (imports, the API's models,
# the store): text is at most TEXT_MAX_LENGTH characters unless its field says otherwise.
TEXT_MAX_LENGTH = 200
NOTE_MAX_LENGTH = 1000
ID_MAX_LENGTH = 64
# An id is printed in URLs (/plots/<id>) and files: no slash or backslash (a path would
# split it), no control characters (NUL cuts C strings), no surrounding spaces.
ID_PATTERN = r"^[^/\\\x00-\x1f\x7f-\x9f\s](?:[^/\\\x00-\x1f\x7f-\x9f]*[^/\\\x00-\x1f\x7f-\x9f\s])?$"
ID_RULE = (
    f"at most {ID_MAX_LENGTH} characters, without a slash, a backslash, control "
    "characters or surrounding spaces"
)


@dataclass(frozen=True)
class Field:
    """One attribute of a layer.

    Parameters
    ----------
    name : str
        Column name, at most 10 characters so shapefiles keep it.
    type : str
        One of ``FIELD_TYPES``.
    label : str
        Human label (English); translations live in the message catalogues.
    required : bool
        Whether a value must be present.
    choices : tuple of str, optional
        Closed vocabulary for text fields.
    minimum, maximum : float, optional
        Inclusive numeric range.
    computed : bool
        Derived by the store (never accepted from input).
    system : bool
        Kept by the store for its own bookkeeping (versions); not exported.
    ident : bool
        Holds an id (the layer's key, or a reference to another layer's):
        ``ID_PATTERN``, at most ``ID_MAX_LENGTH`` characters.
    max_length : int or None
        Longest text accepted (characters); None for no limit.
    """

    name: str
    type: str
    label: str = ""
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    computed: bool = False
    system: bool = False
    ident: bool = False
    max_length: int | None = TEXT_MAX_LENGTH

    @property
    def text_limit(self) -> int | None:
        """The longest text this field takes (None: not text, or unlimited)."""
        if self.type != "str":
            return None
        return (
            min(ID_MAX_LENGTH, self.max_length or ID_MAX_LENGTH) if self.ident else self.max_length
        )

    def __post_init__(self) -> None:
        if len(self.name) > 10:
            raise ValueError(f"field name {self.name!r} is longer than 10 characters")
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name!r} has unknown type {self.type!r}")


@dataclass(frozen=True)
class Layer:
    """A stored layer: a feature layer when ``geometry`` is set, else a plain table.

    Parameters
    ----------
    name : str
        Table name in every backend and file name in exports.
    geometry : str or None
        ``Polygon``, ``LineString`` or ``Point``; None for tables.
    key : str
        The stable text (or integer, for logs) identifier field.
    fields : tuple of Field
        Attributes in export order, key first.
    label : str
        Human label.
    public : bool
        Whether anonymous users may read and download it.
    asset : bool
        Whether it is infrastructure carrying status, since, due and note.
    audited : bool
        Whether writes leave audit records (not for the audit itself, accounts, job state).
    internal : bool
        The service's own bookkeeping (jobs, sessions, staged uploads): never imported,
        exported or offered as data.
    """

    name: str
    geometry: str | None
    key: str
    fields: tuple[Field, ...]
    label: str = ""
    public: bool = True
    asset: bool = False
    audited: bool = True
    internal: bool = False
    _by_name: dict[str, Field] = dc_field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})
        if self.key not in self._by_name:
            raise ValueError(f"layer {self.name!r}: key {self.key!r} is not a field")
        key = self._by_name[self.key]
        if key.type == "str" and not key.ident:
            raise ValueError(f"layer {self.name!r}: key {self.key!r} must be an ident field")

    def field(self, name: str) -> Field:
        """Return the field called ``name`` (KeyError when unknown)."""
        return self._by_name[name]

    def has(self, name: str) -> bool:
        """Whether the layer has a field called ``name``."""
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        """All field names in order."""
        return [f.name for f in self.fields]

    @property
    def input_fields(self) -> tuple[Field, ...]:
        """Fields a caller may set (neither computed nor system)."""
        return tuple(f for f in self.fields if not (f.computed or f.system))

    @property
    def export_fields(self) -> tuple[Field, ...]:
        """Fields written to exported files."""
        return tuple(f for f in self.fields if not f.system)

    @property
    def is_feature(self) -> bool:
        """Whether the layer has a geometry column."""
        return self.geometry is not None


def _asset(key: str, extra: Iterable[Field] = ()) -> tuple[Field, ...]:
    return (
        Field(key, "str", "Asset id", required=True, ident=True),
        Field("name", "str", "Name"),
        *extra,
        Field("status", "str", "Status", required=True, choices=ASSET_STATUSES),
        Field("since", "date", "Status since"),
        Field("due", "date", "Due"),
        Field("note", "str", "Note", max_length=NOTE_MAX_LENGTH),
        Field("version", "int", "Version", system=True),
    )


_VERSION = Field("version", "int", "Version", system=True)

LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "zone",
            "Polygon",
            "zone_id",
            (
                Field("zone_id", "str", "Zone id", required=True, ident=True),
                Field("name", "str", "Name"),
                Field("operator", "str", "Operator"),
                Field("area_ha", "float", "Area, ha", computed=True),
                _VERSION,
            ),
            "Zone boundary",
        ),
        Layer(
            "expansion",
            "Polygon",
            "exp_id",
            (
                Field("exp_id", "str", "Expansion id", required=True, ident=True),
                Field("name", "str", "Name"),
                Field("status", "str", "Status", required=True, choices=("proposed", "approved")),
                Field("note", "str", "Note", max_length=NOTE_MAX_LENGTH),
                Field("area_ha", "float", "Area, ha", computed=True),
                _VERSION,
            ),
            "Expansion areas",
        ),
        Layer(
            "plots",
            "Polygon",
            "plot_id",
            (
                Field("plot_id", "str", "Plot id", required=True, ident=True),
                Field("cadastre", "str", "Cadastral number"),
                Field("status", "str", "Status", required=True, choices=PLOT_STATUSES),
                Field("sectors", "str", "Allowed sectors"),
                Field("sector", "str", "Occupant's sector", choices=SECTORS),
                Field("resident", "str", "Resident"),
                Field("project", "str", "Project"),
                Field("invest", "float", "Investment, tenge", minimum=0),
                Field("jobs", "int", "Jobs", minimum=0),
                Field("power_kw", "float", "Power demand, kW", minimum=0),
                Field("water_m3d", "float", "Water demand, m³/day", minimum=0),
                Field("rail_need", "bool", "Needs rail"),
                Field("hazard", "int", "Hazard class", minimum=1, maximum=5),
                Field("hazard_ok", "int", "Highest hazard class allowed", minimum=1, maximum=5),
                Field("floor_m2", "float", "Production floor, m²", minimum=0),
                Field("start_yr", "int", "Start year", minimum=1900, maximum=2100),
                Field("exp_id", "str", "Expansion area", ident=True),
                Field("area_ha", "float", "Area, ha", computed=True),
                _VERSION,
            ),
            "Plots",
        ),
        Layer(
            "roads",
            "LineString",
            "asset_id",
            _asset(
                "asset_id",
                (
                    Field(
                        "class",
                        "str",
                        "Road class",
                        required=True,
                        choices=("arterial", "collector", "local", "access"),
                    ),
                ),
            ),
            "Roads",
            asset=True,
        ),
        Layer("gates", "Point", "asset_id", _asset("asset_id"), "Gates", asset=True),
        Layer(
            "rail_lines",
            "LineString",
            "asset_id",
            _asset(
                "asset_id",
                (
                    Field(
                        "kind", "str", "Kind", required=True, choices=("mainline", "siding", "spur")
                    ),
                ),
            ),
            "Rail lines",
            asset=True,
        ),
        Layer(
            "rail_stations",
            "Point",
            "asset_id",
            _asset("asset_id", (Field("built_yr", "int", "Built", minimum=1900, maximum=2100),)),
            "Rail stations",
            asset=True,
        ),
        Layer(
            "substations",
            "Point",
            "asset_id",
            _asset(
                "asset_id",
                (
                    Field("cap_mva", "float", "Capacity, MVA", required=True, minimum=0),
                    Field("load_mva", "float", "Load, MVA", required=True, minimum=0),
                    Field("kv", "float", "Voltage, kV", minimum=0),
                ),
            ),
            "Substations",
            asset=True,
        ),
        Layer(
            "power_lines",
            "LineString",
            "asset_id",
            _asset(
                "asset_id",
                (
                    Field("kv", "float", "Voltage, kV", minimum=0),
                    Field("sub_id", "str", "Feeding substation", ident=True),
                ),
            ),
            "Power lines",
            asset=True,
        ),
        Layer(
            "water_mains",
            "LineString",
            "asset_id",
            _asset(
                "asset_id",
                (
                    Field("cap_m3d", "float", "Capacity, m³/day", minimum=0),
                    Field("load_m3d", "float", "Load, m³/day", minimum=0),
                    Field("diam_mm", "int", "Diameter, mm", minimum=0),
                ),
            ),
            "Water mains",
            asset=True,
        ),
        Layer(
            "storm_sewers",
            "LineString",
            "asset_id",
            _asset(
                "asset_id",
                (
                    Field("diam_mm", "int", "Diameter, mm", minimum=0),
                    Field("built_yr", "int", "Built", minimum=1900, maximum=2100),
                ),
            ),
            "Storm sewers",
            asset=True,
        ),
        Layer(
            "gas_mains",
            "LineString",
            "asset_id",
            _asset(
                "asset_id",
                (Field("pressure", "str", "Pressure", choices=("low", "medium", "high")),),
            ),
            "Gas mains",
            asset=True,
        ),
        Layer(
            "prot_zones",
            "Polygon",
            "asset_id",
            _asset(
                "asset_id",
                (
                    Field(
                        "kind",
                        "str",
                        "Protects",
                        required=True,
                        choices=("substation", "rail", "power", "gas", "water"),
                    ),
                    Field("width_m", "float", "Width, m", minimum=0),
                ),
            ),
            "Protection zones",
            asset=True,
        ),
        Layer(
            "applications",
            None,
            "app_id",
            (
                Field("app_id", "str", "Application id", required=True, ident=True),
                Field("investor", "str", "Investor (user)", required=True),
                Field("company", "str", "Company"),
                Field("project", "str", "Project", required=True),
                Field("sector", "str", "Sector", required=True, choices=SECTORS),
                Field("plot_id", "str", "Plot applied for", ident=True),
                Field("min_ha", "float", "Minimum area, ha", required=True, minimum=0),
                Field("max_ha", "float", "Maximum area, ha", required=True, minimum=0),
                Field("power_kw", "float", "Power, kW", minimum=0),
                Field("water_m3d", "float", "Water, m³/day", minimum=0),
                Field("rail_need", "bool", "Needs rail"),
                Field("hazard", "int", "Hazard class", minimum=1, maximum=5),
                Field("invest", "float", "Investment, tenge", minimum=0),
                Field("jobs", "int", "Jobs", minimum=0),
                Field("start_yr", "int", "Start year", minimum=1900, maximum=2100),
                Field("floor_m2", "float", "Production floor, m²", minimum=0),
                Field("priority", "int", "Priority", minimum=0),
                Field("status", "str", "Status", required=True, choices=APPLICATION_STATUSES),
                Field("reason", "str", "Reason", max_length=NOTE_MAX_LENGTH),
                Field("assigned", "str", "Plot reserved", ident=True),
                Field("created", "datetime", "Created"),
                Field("updated", "datetime", "Updated"),
                _VERSION,
            ),
            "Applications",
            public=False,
        ),
        Layer(
            "users",
            None,
            "username",
            (
                Field("username", "str", "User name", required=True, ident=True),
                Field("pw_hash", "str", "Password hash", required=True, max_length=None),
                Field("role", "str", "Role", required=True, choices=ROLES),
                Field("token_hash", "str", "API token hash", max_length=None),
                Field("lang", "str", "Language", choices=("en", "ru", "kk")),
                Field("active", "bool", "Active"),
                Field("created", "datetime", "Created"),
                _VERSION,
            ),
            "Users",
            public=False,
            audited=False,
        ),
        Layer(
            "targets",
            None,
            "target_id",
            (
                Field("target_id", "str", "Target id", required=True, ident=True),
                Field("name", "str", "Target"),
                Field(
                    "metric",
                    "str",
                    "Metric",
                    required=True,
                    choices=("projects", "invest", "parks", "floor_m2"),
                ),
                Field("value", "float", "Target value", required=True, minimum=0),
                Field("year", "int", "By year", required=True),
                Field("source", "str", "Source"),
                _VERSION,
            ),
            "Plan targets",
        ),
        Layer(
            "audit",
            None,
            "audit_id",
            (
                Field("audit_id", "int", "Record", required=True),
                Field("at", "datetime", "When", required=True),
                Field("username", "str", "Who", required=True),
                Field(
                    "action", "str", "Action", required=True, choices=("insert", "update", "delete")
                ),
                Field("layer", "str", "Layer", required=True),
                Field("feat_id", "str", "Feature", required=True, max_length=None),
                Field("changes", "str", "Changes (JSON)", max_length=None),
            ),
            "Audit trail",
            public=False,
            audited=False,
        ),
        Layer(
            "jobs",
            None,
            "job_id",
            (
                Field("job_id", "str", "Job", required=True, ident=True),
                Field("kind", "str", "Kind", required=True),
                Field("state", "str", "State", required=True, choices=JOB_STATES),
                Field("username", "str", "Started by"),
                Field("params", "str", "Parameters (JSON)", max_length=None),
                Field("progress", "float", "Progress", minimum=0, maximum=1),
                Field("message", "str", "Message", max_length=None),
                Field("result", "str", "Result (JSON)", max_length=None),
                Field("error", "str", "Error", max_length=None),
                Field("cancel", "bool", "Cancel requested"),
                Field("worker", "str", "Worker"),
                Field("created", "datetime", "Created"),
                Field("started", "datetime", "Started"),
                Field("finished", "datetime", "Finished"),
                Field("heartbeat", "datetime", "Last sign of life"),
                _VERSION,
            ),
            "Background jobs",
            public=False,
            audited=False,
            internal=True,
        ),
        Layer(
            "sessions",
            None,
            "sid_hash",
            (
                Field("sid_hash", "str", "Session (SHA-256 of its id)", required=True, ident=True),
                Field("username", "str", "User", required=True),
                Field("created", "datetime", "Logged in", required=True),
                Field("seen", "datetime", "Last request", required=True),
                _VERSION,
            ),
            "Log-in sessions",
            public=False,
            audited=False,
            internal=True,
        ),
        Layer(
            "login_fails",
            None,
            "fail_key",
            (
                Field(
                    "fail_key", "str", "User name and address (SHA-256)", required=True, ident=True
                ),
                Field("fails", "int", "Failed log-ins", required=True, minimum=0),
                Field("since", "datetime", "First failure", required=True),
                _VERSION,
            ),
            "Failed log-ins",
            public=False,
            audited=False,
            internal=True,
        ),
        Layer(
            "settings",
            None,
            "name",
            (
                Field("name", "str", "Setting", required=True, ident=True),
                Field("value", "str", "Value"),
                _VERSION,
            ),
            "Service settings and secrets",
            public=False,
            audited=False,
            internal=True,
        ),
        # Files a planner uploaded, checked and waiting for confirmation; in the store so
        # every server process over it sees them and no other store can apply them.
        Layer(
            "uploads",
            None,
            "token",
            (
                Field("token", "str", "Token", required=True, ident=True),
                Field("username", "str", "Uploaded by", required=True, max_length=None),
                Field("layer", "str", "Target layer", required=True),
                Field("options", "str", "Options (JSON)", max_length=NOTE_MAX_LENGTH),
                Field("filename", "str", "File name"),
                Field("size", "int", "Bytes", minimum=0),
                Field("created", "datetime", "Staged", required=True),
            ),
            "Staged uploads",
            public=False,
            audited=False,
            internal=True,
        ),
        Layer(
            "upload_data",
            None,
            "token",
            (
                Field("token", "str", "Token", required=True, ident=True),
                Field("data", "str", "File (base64)", required=True, max_length=None),
            ),
            "Staged upload files",
            public=False,
            audited=False,
            internal=True,
        ),
    )
}

FEATURE_LAYERS: tuple[str, ...] = tuple(n for n, lyr in LAYERS.items() if lyr.is_feature)
ASSET_LAYERS: tuple[str, ...] = tuple(n for n, lyr in LAYERS.items() if lyr.asset)
TABLES: tuple[str, ...] = tuple(n for n, lyr in LAYERS.items() if not lyr.is_feature)
INTERNAL_LAYERS: tuple[str, ...] = tuple(n for n, lyr in LAYERS.items() if lyr.internal)


def get_layer(name: str) -> Layer:
    """Return the schema of layer ``name``.

    Raises
    ------
    KeyError
        With a message listing the known layers.
    """
    try:
        return LAYERS[name]
    except KeyError:
        raise KeyError(f"unknown layer {name!r}; known layers: {', '.join(LAYERS)}") from None


def parse_list(text: str | None, everything: str = "*") -> frozenset[str] | None:
    """Parse comma-list text: None for "every value" (NULL, empty or ``everything``, each
    after stripping whitespace), else the set of its stripped, non-empty items.

    The one reading of list fields: :func:`parse_sectors`, and the stores' ``ListHas``
    filter (rendered in SQL by each backend and tested against this function).
    """
    text = (text or "").strip()
    if text in ("", everything):
        return None
    return frozenset(s.strip() for s in text.split(",") if s.strip())


def parse_sectors(text: str | None) -> frozenset[str] | None:
    """Parse an allowed-sectors value: None for ``*`` (all), else the set of codes."""
    return parse_list(text)
