//! The simulated inventory: devices in ascending id order, each with its rendered JSON cached per
//! view, plus the drift and the churn that change the inventory while a client pages through it.
//!
//! Pages are built by concatenating cached item strings; an edit replaces the device's entry, which
//! drops its cache. The inventory lock is held only to pick a page's entries, never while
//! rendering or writing to a socket.

use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{Churn, Drift};
use crate::records::{Device, Facts};
use crate::render;
use crate::support::lock;

/// How many rendered views one device keeps: a client pulls one view, and a test may compare it
/// with a second; more would only grow memory (a v1 record is about 3 KB).
const CACHED_VIEWS: usize = 2;

/// Which shape a device is rendered in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The full record of `/api/1.0/devices/all/`.
    V1,
    /// The item of `/api/2.0/devices/`: brief columns plus these known `include_cols`.
    V2(Vec<&'static str>),
}

/// How a device is rendered: its shape, and whether empty strings are sent as null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    /// v1 record or v2 item.
    pub shape: Shape,
    /// `blankasnull=yes`: the record's empty strings are sent as null.
    pub blank_as_null: bool,
}

impl View {
    /// The v1 view.
    pub fn v1(blank_as_null: bool) -> View {
        View {
            shape: Shape::V1,
            blank_as_null,
        }
    }

    /// The v2 view for an `include_cols` list; unknown names are ignored, order and repeats do not
    /// matter.
    pub fn v2<S: AsRef<str>>(include_cols: &[S], blank_as_null: bool) -> View {
        let wanted: Vec<&str> = include_cols.iter().map(|c| c.as_ref().trim()).collect();
        let cols = render::V2_COLUMNS
            .iter()
            .copied()
            .filter(|c| wanted.contains(c))
            .collect();
        View {
            shape: Shape::V2(cols),
            blank_as_null,
        }
    }

    /// A key naming this view in the per-device cache.
    pub fn cache_key(&self) -> Arc<str> {
        let blanks = if self.blank_as_null { "null" } else { "blank" };
        match &self.shape {
            Shape::V1 => Arc::from(format!("v1:{blanks}")),
            Shape::V2(cols) => Arc::from(format!("v2:{blanks}:{}", cols.join(","))),
        }
    }
}

/// One device and its rendered forms.
#[derive(Debug)]
pub(crate) struct Entry {
    /// What is stored about the device.
    pub device: Device,
    /// Rendered JSON by view key, most recent last, at most [`CACHED_VIEWS`].
    cache: Mutex<Vec<(Arc<str>, Arc<str>)>>,
}

impl Entry {
    fn new(device: Device) -> Arc<Entry> {
        Arc::new(Entry {
            device,
            cache: Mutex::new(Vec::new()),
        })
    }

    /// The device rendered in `view` (named `key`), from the cache when it is there.
    pub fn rendered(&self, seed: u64, view: &View, key: &Arc<str>) -> Arc<str> {
        if let Some((_, json)) = lock(&self.cache).iter().find(|(k, _)| k == key) {
            return json.clone();
        }
        let facts = Facts::of(seed, &self.device);
        let json: Arc<str> = Arc::from(match &view.shape {
            Shape::V1 => render::v1(&facts, view.blank_as_null),
            Shape::V2(include) => render::v2(&facts, include, view.blank_as_null),
        });
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHED_VIEWS {
            cache.remove(0);
        }
        cache.push((key.clone(), json.clone()));
        json
    }
}

/// Which devices a list request covers, by `last_updated` (unix milliseconds).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Filter {
    /// Only devices updated at or after this moment.
    pub updated_from_ms: Option<i64>,
    /// Only devices updated before this moment.
    pub updated_before_ms: Option<i64>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.updated_from_ms.is_none() && self.updated_before_ms.is_none()
    }

    fn matches(&self, device: &Device) -> bool {
        self.updated_from_ms
            .is_none_or(|from| device.last_updated_ms >= from)
            && self
                .updated_before_ms
                .is_none_or(|before| device.last_updated_ms < before)
    }
}

/// All devices, ascending by id.
#[derive(Debug)]
pub(crate) struct Inventory {
    /// The devices, sorted by id.
    devices: Vec<Arc<Entry>>,
    /// The highest id ever used, so that a new device never reuses a removed one's id.
    last_id: i64,
    /// Changes still to make after devices list requests.
    drift: Drift,
    /// Steady churn still to make after devices list requests.
    churn: Churn,
    /// Devices list requests churn has followed so far, to count `delete_every`/`add_every`.
    churned: u32,
    /// Picks the devices churn removes; seeded, so a test run repeats.
    rng: StdRng,
}

impl Inventory {
    /// The initial inventory: `count` devices with ids from 1, skipping the seed's gaps.
    pub fn generate(seed: u64, count: usize) -> Inventory {
        let mut devices = Vec::with_capacity(count);
        let mut id = 0;
        while devices.len() < count {
            id += 1;
            if !Device::is_gap(seed, id) {
                devices.push(Entry::new(Device::generated(seed, id)));
            }
        }
        Inventory {
            devices,
            last_id: id,
            drift: Drift::default(),
            churn: Churn::default(),
            churned: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn ids(&self) -> Vec<i64> {
        self.devices.iter().map(|e| e.device.id).collect()
    }

    /// Every device, for rendering outside the lock.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.devices.clone()
    }

    /// One device by id.
    pub fn get(&self, id: i64) -> Option<Arc<Entry>> {
        self.position(id).ok().map(|i| self.devices[i].clone())
    }

    /// The number of devices matching `filter`, and those of them at `offset..offset + limit`.
    pub fn page(&self, filter: &Filter, offset: usize, limit: usize) -> (usize, Vec<Arc<Entry>>) {
        if filter.is_empty() {
            let start = offset.min(self.devices.len());
            let end = offset.saturating_add(limit).min(self.devices.len());
            return (self.devices.len(), self.devices[start..end].to_vec());
        }
        let matching: Vec<&Arc<Entry>> = self
            .devices
            .iter()
            .filter(|e| filter.matches(&e.device))
            .collect();
        let page = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|e| (*e).clone())
            .collect();
        (matching.len(), page)
    }

    /// Adds `count` devices with ids above any used so far; returns their ids.
    pub fn add(&mut self, count: usize, now_ms: i64) -> Vec<i64> {
        let ids: Vec<i64> = (1..=count as i64).map(|n| self.last_id + n).collect();
        self.last_id += count as i64;
        self.devices
            .extend(ids.iter().map(|&id| Entry::new(Device::added(id, now_ms))));
        ids
    }

    /// Edits a device: new name suffix and notes, `last_updated` now. False when it does not exist.
    pub fn edit(&mut self, id: i64, now_ms: i64) -> bool {
        let Ok(i) = self.position(id) else {
            return false;
        };
        let mut device = self.devices[i].device.clone();
        device.edits += 1;
        device.last_updated_ms = now_ms.max(device.last_updated_ms + 1);
        self.devices[i] = Entry::new(device);
        true
    }

    /// Removes a device. False when it does not exist.
    pub fn remove(&mut self, id: i64) -> bool {
        let Ok(i) = self.position(id) else {
            return false;
        };
        self.devices.remove(i);
        true
    }

    pub fn set_drift(&mut self, drift: Drift) {
        self.drift = drift;
    }

    /// The highest id ever used: every id a device ever had is at most this.
    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    pub fn set_churn(&mut self, churn: Churn) {
        self.churn = churn;
        self.churned = 0;
    }

    /// Called after each devices list request, which asked for `offset`: makes one page's worth
    /// of drift and the churn due, if any is left.
    pub fn drift_after_page(&mut self, now_ms: i64, offset: usize) {
        self.churn_after_request(now_ms, offset);
        if self.drift.pages == 0 {
            return;
        }
        self.drift.pages -= 1;
        let deletes = self.drift.deletes_per_page.min(self.devices.len());
        self.devices.drain(..deletes);
        self.add(self.drift.inserts_per_page, now_ms);
    }

    /// Removes a device listed before `offset` (any at offset 0) and adds one, when their turn
    /// has come.
    fn churn_after_request(&mut self, now_ms: i64, offset: usize) {
        if self.churn.requests == 0 {
            return;
        }
        self.churn.requests -= 1;
        self.churned += 1;
        let due = |every: u32| every > 0 && self.churned.is_multiple_of(every);
        let (delete, add) = (due(self.churn.delete_every), due(self.churn.add_every));
        if delete && !self.devices.is_empty() {
            let below = match offset.min(self.devices.len()) {
                0 => self.devices.len(),
                listed => listed,
            };
            let at = self.rng.random_range(0..below);
            self.devices.remove(at);
        }
        if add {
            self.add(1, now_ms);
        }
    }

    fn position(&self, id: i64) -> Result<usize, usize> {
        self.devices.binary_search_by_key(&id, |e| e.device.id)
    }
}
