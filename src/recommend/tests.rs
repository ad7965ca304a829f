//! Rule tests on hand-made link records (the demo capture is tested end to end in
//! tests/recommend.rs).
