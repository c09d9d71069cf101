//! Dataset definitions: no input may panic, and an accepted one makes valid DDL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tier_core::{Definition, Registry};

fuzz_target!(|data: &[u8]| {
    if let Ok(def) = Definition::from_toml_str(&String::from_utf8_lossy(data), "fuzz.toml") {
        let mut registry = Registry::builtin();
        let name = def.name.clone();
        registry.add(def);
        let dataset = registry.get(&name).expect("added");
        assert!(dataset.table.len() + "_rejects".len() <= 63);
        let _ = tier_core::db::ddl::full_ddl(&[dataset], "public");
    }
});
