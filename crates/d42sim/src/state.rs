//! The state one simulator shares between its request handlers and its test-facing API.
//!
//! Each part has its own lock, held only for in-memory bookkeeping and never across an `.await`.

use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use crate::buildings::Buildings;
use crate::config::SimConfig;
use crate::faults::Faults;
use crate::inventory::Inventory;
use crate::journal::Journal;
use crate::support::lock;
use crate::tokens::Tokens;

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
    /// Answer every devices list request from offset 0, as a server (or a proxy in front of
    /// it) that drops `offset`: no paging ever gets past the first page.
    pub ignores_offset: bool,
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
                ignores_offset: false,
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
