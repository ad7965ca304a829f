//! Unit tests of the trace readers.
