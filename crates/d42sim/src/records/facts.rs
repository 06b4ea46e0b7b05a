//! [`Facts`]: every field of one record, derived from a stored [`Device`] and the seed.

use super::catalog::{
    CUSTOM_FIELD_KEYS, CUSTOMERS, HARDWARE, Hardware, OSES, ROLES, SERVICE_LEVELS, SITES, TAGS,
    share,
};
use super::fields::{Blade, Cpu, Disks, Ip, Mac, Os, Place, Rack, Virtual};
use super::mix::Mix;
use super::{Device, Kind, timestamp};

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
