#![no_main]
//! `make fuzz`: the parse_phc harness of `_rust_core::fuzzing` under libFuzzer.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failed) = _rust_core::fuzzing::parse_phc(data) {
        panic!("parse_phc: {failed}");
    }
});
