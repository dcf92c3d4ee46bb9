#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    schema_registry_fuzz::run(schema_registry_fuzz::Target::Version, data);
});
