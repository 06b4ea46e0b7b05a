//! The typed summary of a device record: the common fields kept as columns beside the raw JSON,
//! so reports can filter on them without parsing JSON. Device42's v2 and v1 APIs name some of
//! them differently (`os_name`/`os`, `hardware`/`hw_model`, ...); both are understood. An empty
//! string is NULL here (the raw record keeps it as sent). The record's lists become the rows of
//! the child tables ([`children`]).

pub mod children;

use children::DeviceChildren;

/// The typed columns of `devices`, in table order after the fixed ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceColumns {
    pub name: Option<String>,
    /// `type` in the record.
    pub kind: Option<String>,
    pub serial_no: Option<String>,
    pub asset_no: Option<String>,
    pub uuid: Option<String>,
    /// 1 or 0; from a JSON bool, a number, or "yes"/"no".
    pub in_service: Option<i64>,
    pub service_level: Option<String>,
    pub customer: Option<String>,
    /// `hardware` (v2) or `hw_model` (v1).
    pub hardware: Option<String>,
    /// `os_name` (v2) or `os` (v1).
    pub os_name: Option<String>,
    /// `os_version` (v2) or `osver` (v1); else the version number, `os_version_no` (v2) or
    /// `osverno` (v1), which some records carry alone.
    pub os_version: Option<String>,
    pub last_updated: Option<String>,
    /// Not columns of `devices`: the rows of the child tables, derived in the same parse so
    /// that they are written with the record.
    pub children: DeviceChildren,
}

impl DeviceColumns {
    /// The column names, in the order [`DeviceColumns::texts`] gives the text values.
    pub const TEXT_COLUMNS: [&'static str; 11] = [
        "name",
        "type",
        "serial_no",
        "asset_no",
        "uuid",
        "service_level",
        "customer",
        "hardware",
        "os_name",
        "os_version",
        "last_updated",
    ];

    /// The text columns' values, in [`DeviceColumns::TEXT_COLUMNS`] order.
    pub fn texts(&self) -> [Option<&str>; 11] {
        [
            self.name.as_deref(),
            self.kind.as_deref(),
            self.serial_no.as_deref(),
            self.asset_no.as_deref(),
            self.uuid.as_deref(),
            self.service_level.as_deref(),
            self.customer.as_deref(),
            self.hardware.as_deref(),
            self.os_name.as_deref(),
            self.os_version.as_deref(),
            self.last_updated.as_deref(),
        ]
    }
}
