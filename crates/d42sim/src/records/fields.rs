//! The parts a record is made of: placement, virtualisation, OS, hardware, addresses.

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
