//! Tables: owned records -> the `exchanges` and `connections` polars DataFrames, written
//! to and read back from Parquet.
