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
const OSES: &[(&str, &str, i64)] = &[
    ("Ubuntu", "22.04", 2204),
    ("Red Hat Enterprise Linux", "8.6", 86),
    ("Windows Server 2019 Standard", "1809", 17763),
    ("VMware ESXi", "7.0.3", 703),
    ("Debian", "12", 12),
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
/// Custom field keys and the prefix of their generated values.
const CUSTOM_FIELD_KEYS: &[(&str, &str)] = &[
    ("backup_policy", "backup"),
    ("cost_center", "cc"),
    ("owner_email", "owner"),
    ("patch_window", "patch"),
    ("monitoring_profile", "monitoring"),
    ("support_contract", "contract"),
    ("decommission_date", "2030-01"),
    ("power_budget_watts", "watts"),
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
    /// `orientation`: `front` or `back`.
    pub orientation: &'static str,
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

/// One entry of `ip_addresses`.
#[derive(Debug)]
pub(crate) struct Ip {
    /// `ip`.
    pub ip: String,
    /// `label`: the interface.
    pub label: &'static str,
    /// `subnet`, CIDR.
    pub subnet: String,
    /// `subnet_id`.
    pub subnet_id: i64,
    /// `type`: `static` here.
    pub kind: &'static str,
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
    /// `vlan`, when tagged.
    pub vlan: Option<i64>,
}

/// Every field of one device record, before rendering.
#[derive(Debug)]
pub(crate) struct Facts {
    /// `device_id` and `id`.
    pub id: i64,
    /// `name`: site, role and id, plus a suffix per edit.
    pub name: String,
    /// `type` and `type_id`.
    pub kind: Kind,
    /// `serial_no`: physical devices only, null otherwise.
    pub serial_no: Option<String>,
    /// `asset_no`, often null.
    pub asset_no: Option<String>,
    /// `uuid`, sometimes null.
    pub uuid: Option<String>,
    /// `notes`: changes on every edit.
    pub notes: String,
    /// `service_level`.
    pub service_level: &'static str,
    /// `in_service`: a real JSON bool.
    pub in_service: bool,
    /// `customer_id` and `customer`, when assigned.
    pub customer: Option<(i64, &'static str)>,
    /// `hw_model_id` and the model, physical devices only.
    pub hardware: Option<(i64, &'static Hardware)>,
    /// `os`, `osver`, `osverno`.
    pub os: (&'static str, &'static str, i64),
    /// `cpucount` / `total_cpus`.
    pub cpu_count: i64,
    /// `cpucore` / `core_per_cpu`.
    pub cpu_core: i64,
    /// `cpuspeed` in MHz, a float.
    pub cpu_speed: f64,
    /// RAM in GB; Device42 sends it as an integer or, for odd sizes, a float.
    pub ram: f64,
    /// `hddcount`.
    pub hdd_count: i64,
    /// `hddsize` in GB, a float.
    pub hdd_size: f64,
    /// `hddraid`, when known.
    pub hdd_raid: Option<&'static str>,
    /// The building: id, name code, full name.
    pub site: (i64, &'static str, &'static str),
    /// `room_id` and `room`.
    pub room: (i64, String),
    /// Rack placement: present only on racked physical devices.
    pub rack: Option<Rack>,
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
    /// `cpu_vendor`.
    pub cpu_vendor: &'static str,
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
            format!("edited {} times; last by the simulator", device.edits)
        } else {
            format!(
                "{} {} node in {}, managed by the {} team; warranty until 20{}-{:02}, last audit passed",
                role,
                kind.name(),
                site.2,
                role,
                25 + mix.below(6),
                1 + mix.below(12)
            )
        };
        let hardware = physical.then(|| {
            let index = mix.below(HARDWARE.len() as u64) as usize;
            (index as i64 + 1, &HARDWARE[index])
        });
        let is_switch = hardware.is_some_and(|(_, hw)| hw.name.starts_with("Catalyst"));
        let ram = if mix.chance(0.2) {
            mix.below(64) as f64 + 0.5
        } else {
            (1u64 << mix.below(9)) as f64
        };
        let rack = (kind == Kind::Physical && mix.chance(0.7)).then(|| Rack {
            rack_id: 1 + mix.below(400) as i64,
            rack: format!("{}-R{:03}", site.1.to_uppercase(), mix.below(400)),
            row: format!("{}", (b'A' + mix.below(12) as u8) as char),
            start_at: (1 + mix.below(40)) as f64,
            orientation: if mix.chance(0.9) { "front" } else { "back" },
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
            .map(|(key, prefix)| {
                let value = mix
                    .chance(0.6)
                    .then(|| format!("{}-{}", prefix, mix.below(1000)));
                (*key, value, "")
            })
            .collect();
        let tags = (0..mix.below(4)).map(|_| mix.pick(TAGS)).collect();
        let aliases = (0..mix.below(4))
            .map(|n| format!("{}-alias{}.corp.example.com", role, n))
            .collect();
        let ips = (0..1 + mix.below(4))
            .map(|n| {
                let (a, b) = (mix.below(250), mix.below(250));
                Ip {
                    ip: format!("10.{}.{}.{}", site.0, a, b + 1),
                    label: if n == 0 { "eth0" } else { "mgmt" },
                    subnet: format!("10.{}.{}.0/24", site.0, a),
                    subnet_id: site.0 * 1000 + a as i64,
                    kind: "static",
                }
            })
            .collect();
        let macs = (0..1 + mix.below(2))
            .map(|n| Mac {
                mac: mix.mac(),
                port: physical.then(|| format!("Gi1/0/{}", 1 + mix.below(48))),
                port_name: format!("eth{n}"),
                vlan: mix.chance(0.5).then(|| 100 + mix.below(50) as i64),
            })
            .collect();
        Facts {
            id,
            name,
            kind,
            serial_no: physical.then(|| format!("FOC{}", mix.alnum(8))),
            asset_no: mix
                .chance(0.7)
                .then(|| format!("{:06}", mix.below(1_000_000))),
            uuid: if mix.chance(0.8) {
                Some(mix.uuid())
            } else {
                None
            },
            notes,
            service_level: mix.pick(SERVICE_LEVELS),
            in_service: mix.chance(0.9),
            customer: mix.chance(0.8).then(|| mix.pick(CUSTOMERS)),
            hardware,
            os: mix.pick(OSES),
            cpu_count: 1 << mix.below(3),
            cpu_core: 2 << mix.below(5),
            cpu_speed: 2000.0 + (mix.below(16) * 100) as f64,
            ram,
            hdd_count: mix.below(8) as i64,
            hdd_size: (1u64 << mix.below(5)) as f64 * 240.0,
            hdd_raid: mix.chance(0.5).then_some("RAID 10"),
            site,
            room: (
                site.0 * 10 + mix.below(3) as i64,
                format!("Room {}", 100 + mix.below(3)),
            ),
            rack,
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
            cpu_vendor: if mix.chance(0.7) {
                "GenuineIntel"
            } else {
                "AuthenticAMD"
            },
            last_discovered: mix
                .chance(0.8)
                .then(|| timestamp(device.last_updated_ms - 3_600_000)),
            first_added: timestamp(device.first_added_ms),
            last_updated: timestamp(device.last_updated_ms),
        }
    }
}

/// Unix milliseconds as Device42 writes times: UTC with milliseconds and `Z`.
pub(crate) fn timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
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
