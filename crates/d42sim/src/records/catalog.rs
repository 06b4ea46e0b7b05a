//! The catalogues generated records draw from, and the shares of real records that carry a
//! field, so that simulated inventories look like real ones.

/// A hardware model from the catalogue below.
#[derive(Debug)]
pub(crate) struct Hardware {
    /// `hw_model` / `hardware`.
    pub name: &'static str,
    /// `manufacturer`.
    pub manufacturer: &'static str,
    /// `hw_size` in rack units; a float in Device42.
    pub size: f64,
    /// `hw_depth`: 1 full depth, 2 half depth.
    pub depth: i64,
}

pub(super) const HARDWARE: &[Hardware] = &[
    Hardware {
        name: "PowerEdge R640",
        manufacturer: "Dell Inc.",
        size: 1.0,
        depth: 1,
    },
    Hardware {
        name: "PowerEdge R740xd",
        manufacturer: "Dell Inc.",
        size: 2.0,
        depth: 1,
    },
    Hardware {
        name: "ProLiant DL380 Gen10",
        manufacturer: "HPE",
        size: 2.0,
        depth: 1,
    },
    Hardware {
        name: "UCS C220 M5",
        manufacturer: "Cisco Systems",
        size: 1.0,
        depth: 1,
    },
    Hardware {
        name: "Catalyst 9300-48P",
        manufacturer: "Cisco Systems",
        size: 1.0,
        depth: 2,
    },
    Hardware {
        name: "ThinkSystem SR650",
        manufacturer: "Lenovo",
        size: 2.0,
        depth: 1,
    },
];
/// Operating systems: name (`os`), version (`osver`, sometimes not a version at all) and version
/// number (`osverno`, a string), as real records spell them, trailing spaces included.
pub(super) const OSES: &[(&str, &str, &str)] = &[
    ("Ubuntu", "22.04", "22.04"),
    ("Red Hat Enterprise Linux", "8.6", "8.6"),
    (
        "Microsoft Windows Server 2019 Standard",
        "1809",
        "10.0.17763",
    ),
    ("Microsoft Windows 10 Enterprise", "64bit", "10.0.10586"),
    (
        "Microsoft Windows Server 2008 R2 Standard ",
        "Service Pack 1",
        "6.1.7601",
    ),
    ("VMware ESXi", "7.0.3", "7.0.3"),
    ("Debian", "12", "12"),
];
pub(super) const SITES: &[(i64, &str, &str)] = &[
    (1, "nyc", "New York DC1"),
    (2, "sfo", "San Francisco Colo"),
    (3, "lon", "London Docklands"),
    (4, "fra", "Frankfurt Hanauer Landstr"),
    (5, "sin", "Singapore Jurong"),
];
pub(super) const ROLES: &[&str] = &[
    "web", "db", "app", "cache", "lb", "sw", "esx", "k8s", "mq", "log",
];
pub(super) const SERVICE_LEVELS: &[&str] = &["Production", "Staging", "Development", "QA"];
pub(super) const CUSTOMERS: &[(i64, &str)] = &[
    (1, "Finance"),
    (2, "Engineering"),
    (3, "Marketing"),
    (4, "Operations"),
];
/// Custom field keys: every device lists all of them, as real records do, and keys can be any
/// string (`""`, `"1"`, `"used byre"` are real ones).
pub(super) const CUSTOM_FIELD_KEYS: &[&str] = &[
    "",
    "1",
    "Application",
    "Asset Owner",
    "backup_policy",
    "Business Unit",
    "Contract End",
    "cost_center",
    "Criticality",
    "Data Classification",
    "decommission_date",
    "Department",
    "Environment",
    "Location Code",
    "Maintenance Window",
    "monitoring_profile",
    "Notes2",
    "owner_email",
    "patch_window",
    "PO Number",
    "power_budget_watts",
    "Project",
    "Purchase Date",
    "Rack Position",
    "support_contract",
    "Support Group",
    "used byre",
    "Warranty End",
];
pub(super) const TAGS: &[&str] = &[
    "pci",
    "critical",
    "legacy",
    "dmz",
    "backup",
    "monitored",
    "linux",
    "windows",
];

/// Shares of real records (905 from Device42's demo appliance) that carry a field; the
/// simulated ones follow them so that tests meet nulls where real records have them.
pub(super) mod share {
    /// `notes` set (null on the rest).
    pub const NOTES: f64 = 0.15;
    /// `os` set.
    pub const OS: f64 = 0.17;
    /// Of devices with an `os`: `osver` set ...
    pub const OSVER: f64 = 0.68;
    /// ... and `osverno` set; where `osver` is not, nearly always (40 of 124 have it alone).
    pub const OSVERNO: f64 = 0.65;
    /// `cpucount`, `cpucore`, `cpuspeed` set.
    pub const CPU: f64 = 0.2;
    /// `hddcount`, `hddsize` set.
    pub const HDD: f64 = 0.15;
    /// `ram` set.
    pub const RAM: f64 = 0.6;
    /// A physical device racked (with building, room and rack fields).
    pub const RACKED: f64 = 0.15;
    /// An unracked device with a building and room nonetheless.
    pub const PLACED: f64 = 0.01;
    /// `ip_addresses` not empty (311 of 905).
    pub const IPS: f64 = 0.34;
    /// An `ip_addresses` entry whose `macaddress` is set (319 of 517).
    pub const IP_MAC: f64 = 0.62;
    /// `mac_addresses` not empty (189 of 905).
    pub const MACS: f64 = 0.21;
    /// `tags` not empty (91 of 905).
    pub const TAGS: f64 = 0.1;
    /// `aliases` not empty (10 of 905; a little more here, so small inventories have some).
    pub const ALIASES: f64 = 0.02;
    /// A custom field with a value (nearly all are null).
    pub const CUSTOM_VALUE: f64 = 0.04;
}
