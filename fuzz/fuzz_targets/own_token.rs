#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dharma_fuzz::own_token(data));
