//! Connection strings, `.pgpass` and service files: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tier_core::db::connect;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = connect::parse(&text);
    let _ = connect::password_in(&text, "h", 5432, "d", "u");
    let _ = connect::service_in(&text, "app");
});
