//! The cost model's quantities written for people: cores, bit rates and milliseconds with
//! a unit that keeps three significant digits readable (never `0.00000`).

/// `1.25 cores`, `0.150 cores`, `1.45 millicores`, `0 cores`.
pub fn cores(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || !x.is_finite() {
        "0 cores".to_owned()
    } else if a >= 1.0 {
        format!("{x:.2} cores")
    } else if a >= 0.1 {
        format!("{x:.3} cores")
    } else {
        format!("{:.2} millicores", x * 1e3)
    }
}

/// A byte rate as bits: `12.5 Mbit/s`, `57.3 kbit/s`, `0 bit/s`.
pub fn bit_rate(bytes_per_s: f64) -> String {
    let bits = bytes_per_s * 8.0;
    let a = bits.abs();
    if a == 0.0 || !bits.is_finite() {
        "0 bit/s".to_owned()
    } else if a >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} Mbit/s", bits / 1e6)
    } else if a >= 1e3 {
        format!("{:.1} kbit/s", bits / 1e3)
    } else {
        format!("{bits:.0} bit/s")
    }
}

/// `41.2 ms`, `1.53 ms`, `0.052 ms`, `0 ms`.
pub fn millis(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || !x.is_finite() {
        "0 ms".to_owned()
    } else if a >= 10.0 {
        format!("{x:.1} ms")
    } else if a >= 1.0 {
        format!("{x:.2} ms")
    } else {
        format!("{x:.3} ms")
    }
}

/// A duration given in seconds: `31.3 s`, `2.4 min`, `0.710 ms`.
pub fn duration(secs: f64) -> String {
    if secs >= 120.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs >= 1.0 {
        format!("{secs:.1} s")
    } else {
        millis(secs * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_figures_keep_their_digits() {
        assert_eq!(cores(0.00145), "1.45 millicores");
        assert_eq!(cores(0.25), "0.250 cores");
        assert_eq!(cores(2.0), "2.00 cores");
        assert_eq!(cores(-0.0085), "-8.50 millicores");
        assert_eq!(cores(0.0), "0 cores");
        assert_eq!(bit_rate(7165.0), "57.3 kbit/s");
        assert_eq!(bit_rate(2_000_000.0), "16.00 Mbit/s");
        assert_eq!(bit_rate(0.0), "0 bit/s");
        assert_eq!(millis(40.12), "40.1 ms");
        assert_eq!(millis(1.534), "1.53 ms");
        assert_eq!(millis(0.0521), "0.052 ms");
        assert_eq!(duration(31.31), "31.3 s");
        assert_eq!(duration(0.00071), "0.710 ms");
        assert_eq!(duration(600.0), "10.0 min");
    }
}
