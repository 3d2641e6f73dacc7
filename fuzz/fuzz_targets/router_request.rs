//! Arbitrary request bodies through Parley's router in this process: HTTP, JSON, automatic persisted
//! queries, parsing, validation, limits, normalization, planning and execution (subgraph fetches fail fast:
//! no subgraph listens), then Parley's error codes. A panic on any router thread, a hang, a dropped
//! connection, a 5xx, or an answer that is not a GraphQL response with client codes is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_fuzz::{check, request_from, Harness};

fuzz_target!(|data: &[u8]| {
    let request = request_from(data);
    let answer = Harness::get().send(&request);
    if let Err(problem) = check(answer.status, &answer.body) {
        panic!("{problem}\nrequest: {request:?}");
    }
});
