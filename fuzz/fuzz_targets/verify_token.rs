#![no_main]
//! `make fuzz`: the verify_token harness of `_rust_core::fuzzing` under libFuzzer.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failed) = _rust_core::fuzzing::verify_token(data) {
        panic!("verify_token: {failed}");
    }
});
