//! The state one simulator shares between its request handlers and its test-facing API.
//!
//! Each part has its own lock, held only for in-memory bookkeeping and never across an `.await`.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use super::auth::Tokens;
use super::buildings::Buildings;
use super::config::SimConfig;
use super::faults::Faults;
use super::inventory::Inventory;
use super::journal::Journal;

/// Everything a running simulator knows.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The settings it started with; the mutable ones live in `knobs`.
    pub cfg: SimConfig,
    /// The devices.
    pub inventory: RwLock<Inventory>,
    /// Issued tokens and their validity.
    pub tokens: Mutex<Tokens>,
    /// Buildings posted so far and the names to reject.
    pub buildings: Mutex<Buildings>,
    /// Injected and random faults.
    pub faults: Mutex<Faults>,
    /// The requests seen and the counters tests read.
    pub journal: Mutex<Journal>,
    /// Settings a test may change while the simulator runs.
    pub knobs: Mutex<Knobs>,
}

/// Settings a test may change while the simulator runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Knobs {
    /// Lifetime of tokens issued from now on.
    pub token_ttl: Duration,
    /// Wait before answering each devices list request.
    pub page_delay: Duration,
    /// Wait before answering each building POST.
    pub post_delay: Duration,
}

impl Shared {
    pub fn new(cfg: SimConfig) -> Shared {
        Shared {
            inventory: RwLock::new(Inventory::generate(cfg.seed, cfg.devices)),
            tokens: Mutex::new(Tokens::default()),
            buildings: Mutex::new(Buildings::default()),
            faults: Mutex::new(Faults::new(cfg.seed, cfg.fail_rate)),
            journal: Mutex::new(Journal::default()),
            knobs: Mutex::new(Knobs {
                token_ttl: cfg.token_ttl,
                page_delay: cfg.page_delay,
                post_delay: cfg.post_delay,
            }),
            cfg,
        }
    }

    /// The current knobs.
    pub fn knobs(&self) -> Knobs {
        *lock(&self.knobs)
    }

    /// Reads the inventory (a panicked writer leaves it usable: every change is one step).
    pub fn inventory(&self) -> std::sync::RwLockReadGuard<'_, Inventory> {
        self.inventory
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the inventory.
    pub fn inventory_mut(&self) -> std::sync::RwLockWriteGuard<'_, Inventory> {
        self.inventory
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Locks `mutex`, ignoring poisoning: the simulator's state stays consistent between statements.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wall-clock now in unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
