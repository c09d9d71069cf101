//! Feeds arbitrary bytes through the reader and the validator of the built-in datasets: no input may
//! panic, and record indexes must run 0, 1, 2, … without gaps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tier_core::Input;
use tier_core::{validate, UnknownFields};
use tier_core::Registry;

fuzz_target!(|data: &[u8]| {
    let input = Input::from_reader("fuzz".as_ref(), Box::new(std::io::Cursor::new(data.to_vec())), false)
        .expect("in-memory input opens");
    let mut records = input.records(4096);
    let mut unknown = UnknownFields::new();
    let mut expected = 0;
    let datasets = Registry::builtin();
    while let Ok(Some(rec)) = records.next_record() {
        assert_eq!(rec.index, expected);
        expected += 1;
        for d in datasets.all() {
            let _ = validate(d, &rec, &mut unknown);
        }
    }
});
