#![no_main]
//! `make fuzz`: the decode_header harness of `_rust_core::fuzzing` under libFuzzer.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failed) = _rust_core::fuzzing::decode_header(data) {
        panic!("decode_header: {failed}");
    }
});
