#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| linkrank::testing::fuzz::http2(data));
