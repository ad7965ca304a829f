//! pcapng timestamp units (`if_tsresol`, `if_tsoffset`) converted to nanoseconds.
//! Written here rather than with pcap-parser's `build_ts`, which truncates seconds to u32,
//! refuses resolutions finer than 10^-19, and reads `if_tsoffset` as little-endian even in
//! big-endian sections.

use crate::model::Timestamp;

const NS_PER_SEC: i128 = 1_000_000_000;

/// One interface's clock: units per second and the offset added to every timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsClock {
    /// `if_tsresol` as stored: high bit clear = 10^-n s, set = 2^-n s.
    resol: u8,
    /// `if_tsoffset`, seconds.
    offset_s: i64,
}

impl Default for TsClock {
    /// The pcapng default: microseconds, no offset.
    fn default() -> Self {
        TsClock {
            resol: 6,
            offset_s: 0,
        }
    }
}

impl TsClock {
    pub const fn new(resol: u8, offset_s: i64) -> Self {
        TsClock { resol, offset_s }
    }

    /// `units` (the 64-bit EPB timestamp) as nanoseconds since the epoch, saturating.
    pub fn to_timestamp(self, units: u64) -> Timestamp {
        let units = i128::from(units);
        let exp = u32::from(self.resol & 0x7f);
        let ns = if self.resol & 0x80 == 0 {
            if exp <= 9 {
                units * 10i128.pow(9 - exp)
            } else {
                // 10^(exp-9) overflows i128 beyond 10^38; every u64 count is then 0 ns.
                match 10i128.checked_pow(exp - 9) {
                    Some(div) => units / div,
                    None => 0,
                }
            }
        } else {
            // 2^-exp seconds: exact in i128 since units < 2^64 and 10^9 < 2^30.
            (units * NS_PER_SEC) >> exp
        };
        let total = ns + i128::from(self.offset_s) * NS_PER_SEC;
        Timestamp::from_nanos(total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_ten_and_two() {
        assert_eq!(
            TsClock::default().to_timestamp(1_500_000).nanos(),
            1_500_000_000
        );
        assert_eq!(TsClock::new(9, 0).to_timestamp(123).nanos(), 123);
        assert_eq!(TsClock::new(3, 0).to_timestamp(7).nanos(), 7_000_000);
        // 10^-12 s units: 2500 ps = 2 ns (truncated).
        assert_eq!(TsClock::new(12, 0).to_timestamp(2_500).nanos(), 2);
        // 2^-10 s units: 512 units = 0.5 s.
        assert_eq!(
            TsClock::new(0x80 | 10, 0).to_timestamp(512).nanos(),
            500_000_000
        );
        // 2^-0: seconds.
        assert_eq!(TsClock::new(0x80, 0).to_timestamp(3).nanos(), 3_000_000_000);
        // absurd exponents do not panic
        assert_eq!(TsClock::new(0x7f, 0).to_timestamp(u64::MAX).nanos(), 0);
        assert_eq!(TsClock::new(0xff, 0).to_timestamp(u64::MAX).nanos(), 0);
        assert_eq!(TsClock::new(0, 0).to_timestamp(u64::MAX).nanos(), i64::MAX);
    }

    #[test]
    fn offset_in_seconds() {
        assert_eq!(
            TsClock::new(6, 100).to_timestamp(1).nanos(),
            100_000_001_000
        );
        assert_eq!(TsClock::new(6, -1).to_timestamp(0).nanos(), -1_000_000_000);
    }
}
