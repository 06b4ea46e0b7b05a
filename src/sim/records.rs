//! Device records: what the simulator stores per device, and the facts (about sixty fields) that
//! are derived from it deterministically for a seed.
//!
//! Only [`Device`] is stored, a few dozen bytes per device, so that 400 000 devices are generated
//! in well under a second. Everything else in a record is recomputed from `(seed, id)` by
//! [`Facts::of`] when the record is rendered, which [`super::inventory`] caches.

use chrono::{DateTime, SecondsFormat};

/// 2019-01-01T00:00:00Z: the earliest `first_added` of a generated device.
const EPOCH_MS: i64 = 1_546_300_800_000;
/// Five years, the span over which generated devices were first added and last updated.
const SPAN_MS: i64 = 5 * 365 * 24 * 3600 * 1000;

/// What is stored for one device; its other fields follow from the seed and `id`.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    /// `device_id` (and `id` in v1): the key of every record.
    pub id: i64,
    /// How often the device was edited: changes its name suffix and notes.
    pub edits: u32,
    /// When it was first added, unix milliseconds.
    pub first_added_ms: i64,
    /// When it was last updated, unix milliseconds: what `last_edited_gt` filters on.
    pub last_updated_ms: i64,
}

impl Device {
    /// A device of the initial inventory: its times are fixed by the seed.
    pub fn generated(seed: u64, id: i64) -> Device {
        let mut mix = Mix::new(seed, id, 1);
        let first_added_ms = EPOCH_MS + mix.below(SPAN_MS as u64 / 2) as i64;
        let last_updated_ms = first_added_ms + mix.below(SPAN_MS as u64 / 2) as i64;
        Device {
            id,
            edits: 0,
            first_added_ms,
            last_updated_ms,
        }
    }

    /// A device added while the simulator runs, at `now_ms`.
    pub fn added(id: i64, now_ms: i64) -> Device {
        Device {
            id,
            edits: 0,
            first_added_ms: now_ms,
            last_updated_ms: now_ms,
        }
    }

    /// Whether the initial inventory leaves a gap at `id` (a device deleted long ago): about 3%.
    pub fn is_gap(seed: u64, id: i64) -> bool {
        Mix::new(seed, id, 0).below(100) < 3
    }
}

/// The four device types, with Device42's type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Physical,
    Blade,
    Virtual,
    Cluster,
}

impl Kind {
    /// The `type` string.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Physical => "physical",
            Kind::Blade => "blade",
            Kind::Virtual => "virtual",
            Kind::Cluster => "cluster",
        }
    }

    /// The `type_id` number.
    pub fn type_id(self) -> i64 {
        match self {
            Kind::Physical => 1,
            Kind::Blade => 2,
            Kind::Virtual => 3,
            Kind::Cluster => 5,
        }
    }
}

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

const HARDWARE: &[Hardware] = &[
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
const OSES: &[(&str, &str, &str)] = &[
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
const SITES: &[(i64, &str, &str)] = &[
    (1, "nyc", "New York DC1"),
    (2, "sfo", "San Francisco Colo"),
    (3, "lon", "London Docklands"),
    (4, "fra", "Frankfurt Hanauer Landstr"),
    (5, "sin", "Singapore Jurong"),
];
const ROLES: &[&str] = &[
    "web", "db", "app", "cache", "lb", "sw", "esx", "k8s", "mq", "log",
];
const SERVICE_LEVELS: &[&str] = &["Production", "Staging", "Development", "QA"];
const CUSTOMERS: &[(i64, &str)] = &[
    (1, "Finance"),
    (2, "Engineering"),
    (3, "Marketing"),
    (4, "Operations"),
];
/// Custom field keys: every device lists all of them, as real records do, and keys can be any
/// string (`""`, `"1"`, `"used byre"` are real ones).
const CUSTOM_FIELD_KEYS: &[&str] = &[
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
const TAGS: &[&str] = &[
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
mod share {
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

/// A rack placement, present only on racked physical devices.
#[derive(Debug)]
pub(crate) struct Rack {
    /// `rack_id`.
    pub rack_id: i64,
    /// `rack`: the rack's name.
    pub rack: String,
    /// `row`.
    pub row: String,
    /// `start_at`: the lowest rack unit, a float in Device42.
    pub start_at: f64,
    /// `orientation`: an int in real records (1, front, in all of them; 2 here for back).
    pub orientation: i64,
}

/// Where a device stands: `building`, `room` and maybe a rack; absent (not null) when unknown.
#[derive(Debug)]
pub(crate) struct Place {
    /// `building_id` and `building`.
    pub building: (i64, &'static str),
    /// `room_id` and `room`.
    pub room: (i64, String),
    /// Rack fields, on racked physical devices only.
    pub rack: Option<Rack>,
}

/// Where a virtual device runs, present only on virtual devices.
#[derive(Debug)]
pub(crate) struct Virtual {
    /// `virtual_host_id`.
    pub host_id: i64,
    /// `virtual_host_name`.
    pub host_name: String,
    /// `virtual_subtype`: the hypervisor.
    pub subtype: &'static str,
    /// `vm_uuid`.
    pub vm_uuid: String,
}

/// Which chassis a blade sits in, present only on blades.
#[derive(Debug)]
pub(crate) struct Blade {
    /// `blade_host_id`.
    pub host_id: i64,
    /// `blade_host_name`.
    pub host_name: String,
    /// `slot_no`.
    pub slot_no: i64,
}

/// The operating system fields, null together when the OS is unknown.
#[derive(Debug)]
pub(crate) struct Os {
    /// `os` / `os_name`.
    pub name: &'static str,
    /// `osver` / `os_version`, when set.
    pub version: Option<&'static str>,
    /// `osverno` / `os_version_no`, a string, when set.
    pub number: Option<&'static str>,
    /// `osarch` / `os_architecture`.
    pub arch: i64,
}

/// The CPU fields, null together in most real records.
#[derive(Debug)]
pub(crate) struct Cpu {
    /// `cpucount` / `total_cpus`.
    pub count: i64,
    /// `cpucore` / `core_per_cpu`.
    pub cores: i64,
    /// `corethread` / `threads_per_core`.
    pub threads: i64,
    /// `cpuspeed` / `cpu_speed` in MHz, a float.
    pub speed: f64,
    /// `cpu_vendor`.
    pub vendor: &'static str,
}

/// The disk fields, null together in most real records.
#[derive(Debug)]
pub(crate) struct Disks {
    /// `hddcount` / `hard_disk_count`.
    pub count: i64,
    /// `hddsize` / `hard_disk_size` in GB, a float.
    pub size: f64,
    /// `hddraid`, when known.
    pub raid: Option<&'static str>,
}

/// One entry of `ip_addresses`.
#[derive(Debug)]
pub(crate) struct Ip {
    /// `ip`.
    pub ip: String,
    /// `label`: the interface, often blank.
    pub label: &'static str,
    /// `subnet`, CIDR.
    pub subnet: String,
    /// `subnet_id`.
    pub subnet_id: i64,
    /// `type`: an int, or null.
    pub kind: Option<i64>,
    /// `macaddress`: the interface's MAC, when known.
    pub mac: Option<String>,
}

/// One entry of `mac_addresses`.
#[derive(Debug)]
pub(crate) struct Mac {
    /// `mac`.
    pub mac: String,
    /// `port`: the switch port, on physical devices only.
    pub port: Option<String>,
    /// `port_name`: the device's interface.
    pub port_name: String,
    /// `vlan`: a string, blank when untagged.
    pub vlan: String,
}

/// Every field of one device record, before rendering. A `Some("")` text is sent as `""` (or
/// null when the client asks for `blankasnull`), a `None` as null.
#[derive(Debug)]
pub(crate) struct Facts {
    /// `device_id` and `id`.
    pub id: i64,
    /// `name`: site, role and id, plus a suffix per edit.
    pub name: String,
    /// `type` and `type_id`.
    pub kind: Kind,
    /// `serial_no`: physical devices; blank or null on others.
    pub serial_no: Option<String>,
    /// `asset_no`, often blank or null.
    pub asset_no: Option<String>,
    /// `uuid`, sometimes blank or null.
    pub uuid: Option<String>,
    /// `notes`: null on most devices; set on every edit.
    pub notes: Option<String>,
    /// `service_level`.
    pub service_level: &'static str,
    /// `in_service`: a real JSON bool.
    pub in_service: bool,
    /// `customer_id` and `customer`, when assigned.
    pub customer: Option<(i64, &'static str)>,
    /// `hw_model_id` and the model, physical devices only.
    pub hardware: Option<(i64, &'static Hardware)>,
    /// `os`, `osver`, `osverno`, `osarch`.
    pub os: Option<Os>,
    /// `cpucount`, `cpucore`, `corethread`, `cpuspeed`, `cpu_vendor`.
    pub cpu: Option<Cpu>,
    /// RAM in MB, always a float in real records (`4096.0`).
    pub ram: Option<f64>,
    /// `hddcount`, `hddsize`, `hddraid`.
    pub disks: Option<Disks>,
    /// Building, room and rack fields: present only where they apply.
    pub place: Option<Place>,
    /// Virtual host fields: present only on virtual devices.
    pub virtual_: Option<Virtual>,
    /// Chassis fields: present only on blades.
    pub blade: Option<Blade>,
    /// `is_it_switch`, sent as yes/no.
    pub is_switch: bool,
    /// `is_it_virtual_host`, sent as yes/no.
    pub is_virtual_host: bool,
    /// `is_it_blade_host`, sent as yes/no.
    pub is_blade_host: bool,
    /// `custom_fields`: key, value (None renders null), notes.
    pub custom_fields: Vec<(&'static str, Option<String>, &'static str)>,
    /// `tags`.
    pub tags: Vec<&'static str>,
    /// `aliases`.
    pub aliases: Vec<String>,
    /// `ip_addresses`.
    pub ips: Vec<Ip>,
    /// `mac_addresses`.
    pub macs: Vec<Mac>,
    /// `asset_tag`, often null.
    pub asset_tag: Option<String>,
    /// `last_discovered`, null when never discovered.
    pub last_discovered: Option<String>,
    /// `first_added`, rendered.
    pub first_added: String,
    /// `last_updated`, rendered.
    pub last_updated: String,
}

impl Facts {
    /// The fields of `device` for `seed`: the same inputs always give the same facts.
    pub fn of(seed: u64, device: &Device) -> Facts {
        let id = device.id;
        let mut mix = Mix::new(seed, id, 2);
        let kind = match mix.below(100) {
            0..50 => Kind::Physical,
            50..60 => Kind::Blade,
            60..95 => Kind::Virtual,
            _ => Kind::Cluster,
        };
        let physical = matches!(kind, Kind::Physical | Kind::Blade);
        let site = mix.pick(SITES);
        let role = mix.pick(ROLES);
        let mut name = format!("{}-{}-{:05}", site.1, role, id);
        if device.edits > 0 {
            name.push_str(&format!("-r{}", device.edits));
        }
        let notes = if device.edits > 0 {
            Some(format!(
                "edited {} times; last by the simulator",
                device.edits
            ))
        } else {
            mix.chance(share::NOTES).then(|| {
                format!(
                    "{} {} node in {}, managed by the {} team; warranty until 20{}-{:02}",
                    role,
                    kind.name(),
                    site.2,
                    role,
                    25 + mix.below(6),
                    1 + mix.below(12)
                )
            })
        };
        let hardware = physical.then(|| {
            let index = mix.below(HARDWARE.len() as u64) as usize;
            (index as i64 + 1, &HARDWARE[index])
        });
        let is_switch = hardware.is_some_and(|(_, hw)| hw.name.starts_with("Catalyst"));
        let os = mix.chance(share::OS).then(|| {
            let (name, version, number) = mix.pick(OSES);
            let version = mix.chance(share::OSVER).then_some(version);
            let number = (version.is_none() || mix.chance(share::OSVERNO)).then_some(number);
            Os {
                name,
                version,
                number,
                arch: if mix.chance(0.9) { 64 } else { 32 },
            }
        });
        let cpu = mix.chance(share::CPU).then(|| Cpu {
            count: 1 << mix.below(3),
            cores: 2 << mix.below(5),
            threads: 1 + mix.below(2) as i64,
            speed: 2000.0 + (mix.below(16) * 100) as f64,
            vendor: if mix.chance(0.7) {
                "GenuineIntel"
            } else {
                "AuthenticAMD"
            },
        });
        let ram = mix.chance(share::RAM).then(|| {
            if mix.chance(0.1) {
                1536.0 * (1 + mix.below(4)) as f64
            } else {
                (1024u64 << mix.below(8)) as f64
            }
        });
        let disks = mix.chance(share::HDD).then(|| Disks {
            count: 1 + mix.below(8) as i64,
            size: (1u64 << mix.below(5)) as f64 * 240.0,
            raid: mix.chance(0.5).then_some("RAID 10"),
        });
        let racked = kind == Kind::Physical && mix.chance(share::RACKED);
        let place = (racked || mix.chance(share::PLACED)).then(|| Place {
            building: (site.0, site.2),
            room: (
                site.0 * 10 + mix.below(3) as i64,
                format!("Room {}", 100 + mix.below(3)),
            ),
            rack: racked.then(|| Rack {
                rack_id: 1 + mix.below(400) as i64,
                rack: format!("{}-R{:03}", site.1.to_uppercase(), mix.below(400)),
                row: format!("{}", (b'A' + mix.below(12) as u8) as char),
                start_at: (1 + mix.below(40)) as f64,
                orientation: if mix.chance(0.9) { 1 } else { 2 },
            }),
        });
        let virtual_ = (kind == Kind::Virtual).then(|| {
            let host_id = 1 + mix.below(id.max(1) as u64) as i64;
            Virtual {
                host_id,
                host_name: format!("{}-esx-{:05}", site.1, host_id),
                subtype: mix.pick(&["VMware", "Hyper-V", "KVM"]),
                vm_uuid: mix.uuid(),
            }
        });
        let blade = (kind == Kind::Blade).then(|| {
            let host_id = 1 + mix.below(id.max(1) as u64) as i64;
            Blade {
                host_id,
                host_name: format!("{}-chassis-{:05}", site.1, host_id),
                slot_no: 1 + mix.below(16) as i64,
            }
        });
        let custom_fields = CUSTOM_FIELD_KEYS
            .iter()
            .map(|key| {
                let value = mix
                    .chance(share::CUSTOM_VALUE)
                    .then(|| format!("value-{}", mix.below(1000)));
                (*key, value, "")
            })
            .collect();
        let tags = if mix.chance(share::TAGS) {
            (0..1 + u64::from(mix.chance(0.1)))
                .map(|_| mix.pick(TAGS))
                .collect()
        } else {
            Vec::new()
        };
        let aliases = if mix.chance(share::ALIASES) {
            (0..1 + mix.below(2))
                .map(|n| format!("{}-alias{}.corp.example.com", role, n))
                .collect()
        } else {
            Vec::new()
        };
        let macs: Vec<Mac> = if mix.chance(share::MACS) {
            (0..1 + u64::from(mix.chance(0.5)))
                .map(|n| Mac {
                    mac: mix.mac(),
                    port: physical.then(|| format!("Gi1/0/{}", 1 + mix.below(48))),
                    port_name: format!("eth{n}"),
                    vlan: if mix.chance(0.4) {
                        format!("{}", 100 + mix.below(50))
                    } else {
                        String::new()
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        let ips = if mix.chance(share::IPS) {
            (0..1 + mix.below(2) + u64::from(mix.chance(0.15)))
                .map(|n| {
                    let (a, b) = (mix.below(250), mix.below(250));
                    let mac = mix
                        .chance(share::IP_MAC)
                        .then(|| match macs.get(n as usize) {
                            Some(known) => known.mac.clone(),
                            None => mix.mac(),
                        });
                    Ip {
                        ip: format!("10.{}.{}.{}", site.0, a, b + 1),
                        label: match n {
                            0 => "eth0",
                            1 => "",
                            _ => "mgmt",
                        },
                        subnet: format!("10.{}.{}.0/24", site.0, a),
                        subnet_id: site.0 * 1000 + a as i64,
                        kind: match mix.below(10) {
                            0..5 => Some(1),
                            5..7 => Some(2),
                            _ => None,
                        },
                        mac,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let blank_or = |mix: &mut Mix, blank: f64, value: Option<String>| {
            if mix.chance(blank) {
                Some(String::new())
            } else {
                value
            }
        };
        let serial_no = match physical {
            true => Some(format!("FOC{}", mix.alnum(8))),
            false => blank_or(&mut mix, 0.3, None),
        };
        let asset_no = mix
            .chance(0.5)
            .then(|| format!("{:06}", mix.below(1_000_000)));
        let asset_no = blank_or(&mut mix, 0.2, asset_no);
        let uuid = mix.chance(0.85).then(|| mix.uuid());
        let uuid = blank_or(&mut mix, 0.1, uuid);
        Facts {
            id,
            name,
            kind,
            serial_no,
            asset_no,
            uuid,
            notes,
            service_level: mix.pick(SERVICE_LEVELS),
            in_service: mix.chance(0.9),
            customer: mix.chance(0.8).then(|| mix.pick(CUSTOMERS)),
            hardware,
            os,
            cpu,
            ram,
            disks,
            place,
            virtual_,
            blade,
            is_switch,
            is_virtual_host: role == "esx",
            is_blade_host: role == "esx" && kind == Kind::Physical && id % 7 == 0,
            custom_fields,
            tags,
            aliases,
            ips,
            macs,
            asset_tag: mix.chance(0.5).then(|| format!("AT-{}", mix.alnum(6))),
            last_discovered: mix
                .chance(0.8)
                .then(|| timestamp(device.last_updated_ms - 3_600_000)),
            first_added: timestamp(device.first_added_ms),
            last_updated: timestamp(device.last_updated_ms),
        }
    }
}

/// Unix milliseconds as Device42 writes times: UTC with microseconds and `Z`
/// (`2016-07-05T22:08:34.043541Z`).
pub(crate) fn timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The splitmix64 output function: scrambles all bits of `z`.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny deterministic random source (splitmix64), so that records depend only on the seed and
/// the id, not on generation order or on a library's choice of algorithm.
pub(crate) struct Mix(u64);

impl Mix {
    /// The stream for one device and one purpose (`salt`).
    pub fn new(seed: u64, id: i64, salt: u64) -> Mix {
        let stream = finalize((id as u64) ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        Mix(finalize(seed ^ stream))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalize(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One element of `items`, which must not be empty.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// `n` characters from `[0-9A-Z]`.
    pub fn alnum(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        (0..n).map(|_| self.pick(CHARS) as char).collect()
    }

    /// A random lowercase UUID-shaped string.
    pub fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// A random MAC address, `aa:bb:cc:dd:ee:ff`.
    pub fn mac(&mut self) -> String {
        let b = self.next().to_le_bytes();
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
