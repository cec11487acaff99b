#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dharma_fuzz::token_response(data));
