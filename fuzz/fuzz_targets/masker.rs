//! No sink ever holds a secret: `RUSTC_BOOTSTRAP=1 cargo fuzz run masker` (from the repository
//! root). The input is decoded into secrets, a line limit, write boundaries and output by
//! `sparkwing::__fuzz::mask_invariant`, the check the SDK's property test runs too; it panics when
//! a stored record, the console or the piped stdout shows a secret.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sparkwing::__fuzz::mask_invariant(data);
});
