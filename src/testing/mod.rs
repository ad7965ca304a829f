//! Test support: where the third-party corpus is, and how a test that needs it runs or is
//! skipped.
//!
//! The corpus (captures and trace files nobody here wrote) is not in the repository. The
//! tests look for it in one place: the `LINKRANK_CORPUS` directory when that variable is
//! set, else `../shared/corpus` beside the checkout. A test that needs it starts with
//! [`corpus::require`]; without a corpus the test returns at once and says why, by name, on
//! stderr and in the `LINKRANK_CORPUS_LOG` file that `scripts/test.sh` counts. With
//! `LINKRANK_REQUIRE_CORPUS=1` (as in CI) a missing corpus fails the test instead, so that
//! a skip can never hide a test where the corpus should be.

pub mod corpus;
pub mod fuzz;
