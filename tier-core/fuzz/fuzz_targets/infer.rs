//! Inference samples: no input may panic, and what is proposed is a definition tier takes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tier_core::Input;
use tier_core::infer_from;
use tier_core::Definition;

fuzz_target!(|data: &[u8]| {
    let input = Input::from_reader(
        "sample.json".as_ref(),
        Box::new(std::io::Cursor::new(data.to_vec())),
        false,
    )
    .expect("in-memory input opens");
    if let Ok(text) = infer_from(input, "sample.json".as_ref(), None, 1000) {
        Definition::from_toml_str(&text, "inferred").expect("a definition tier takes");
    }
});
