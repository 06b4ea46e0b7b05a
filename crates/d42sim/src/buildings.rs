//! The buildings the simulator holds, upserted by name, and the names whose POSTs it refuses.

use std::collections::{BTreeMap, HashMap};

use crate::faults::Rejection;

/// A building as the simulator stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBuilding {
    /// The id Device42 assigned; kept across upserts of the same name.
    pub building_id: i64,
    /// The current name (the key of the upsert).
    pub name: String,
    /// The form fields last posted for it, `name` included.
    pub fields: BTreeMap<String, String>,
}

/// All buildings and the names whose POSTs are refused.
#[derive(Debug, Default)]
pub(crate) struct Buildings {
    /// Buildings by name.
    by_name: BTreeMap<String, SimBuilding>,
    /// The last `building_id` handed out.
    last_id: i64,
    /// Names to refuse, and how.
    pub rejections: HashMap<String, Rejection>,
}

impl Buildings {
    /// Every building, by name.
    pub fn all(&self) -> Vec<SimBuilding> {
        self.by_name.values().cloned().collect()
    }

    /// Inserts or updates the building `name` (renaming it to `new_name` when given); returns it.
    pub fn upsert(&mut self, name: &str, fields: BTreeMap<String, String>) -> SimBuilding {
        let mut building = match self.by_name.remove(name) {
            Some(existing) => existing,
            None => {
                self.last_id += 1;
                SimBuilding {
                    building_id: self.last_id,
                    name: name.to_string(),
                    fields: BTreeMap::new(),
                }
            }
        };
        if let Some(new_name) = fields.get("new_name").filter(|n| !n.is_empty()) {
            building.name = new_name.clone();
        }
        building.fields = fields;
        self.by_name.insert(building.name.clone(), building.clone());
        building
    }
}
