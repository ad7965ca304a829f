//! The latency test of `linkrank diff`: a two-sided Mann-Whitney U test with the normal
//! approximation (tie-corrected variance, continuity correction).
//!
//! Written by hand: none of the crates linkrank depends on has a rank test, and the
//! statistics crates that do (or that offer the normal distribution, such as statrs)
//! would be a whole dependency for about sixty lines. Exchanges per link run from tens
//! to millions, so the normal approximation is used at every size; below about 20 per
//! side an exact test would be better, and the report shows n so that a reader can judge.

use serde::Serialize;

/// Outcome of one test. `p_value` is two-sided.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MannWhitney {
    pub n_before: u64,
    pub n_after: u64,
    /// U of the after sample: pairs (before, after) where after is larger, ties count half.
    pub u_after: f64,
    pub z: f64,
    pub p_value: f64,
    /// U / (n_before * n_after): the probability that an after exchange is slower than a
    /// before one (0.5 = no shift; the common-language effect size).
    pub prob_after_slower: f64,
}

/// Mann-Whitney U of `before` against `after`. Non-finite values are left out; `None`
/// when either side has no value left.
pub fn mann_whitney(before: &[f64], after: &[f64]) -> Option<MannWhitney> {
    let mut all: Vec<(f64, bool)> = before
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| (v, false))
        .chain(after.iter().filter(|v| v.is_finite()).map(|&v| (v, true)))
        .collect();
    let n1 = all.iter().filter(|(_, a)| !a).count() as f64;
    let n2 = all.len() as f64 - n1;
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    // Average ranks over runs of ties; sum of t^3 - t for the variance correction.
    let (mut rank_sum_after, mut ties) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let avg_rank = (i + 1 + j) as f64 / 2.0; // ranks i+1 ..= j
        rank_sum_after += avg_rank * all[i..j].iter().filter(|(_, a)| *a).count() as f64;
        ties += t * t * t - t;
        i = j;
    }
    let u_after = rank_sum_after - n2 * (n2 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let nf = n as f64;
    let var = if nf > 1.0 {
        n1 * n2 / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)))
    } else {
        0.0
    };
    let (z, p_value) = if var > 0.0 {
        // Continuity correction: |U - mean| shrinks by 1/2, never below zero.
        let d = ((u_after - mean).abs() - 0.5).max(0.0);
        let z = d / var.sqrt() * (u_after - mean).signum();
        (z, erfc(d / var.sqrt() / std::f64::consts::SQRT_2).min(1.0))
    } else {
        // Every value equal: no evidence of a shift.
        (0.0, 1.0)
    };
    Some(MannWhitney {
        n_before: n1 as u64,
        n_after: n2 as u64,
        u_after,
        z,
        p_value,
        prob_after_slower: u_after / (n1 * n2),
    })
}

/// Complementary error function, Chebyshev fit with fractional error below 1.2e-7
/// everywhere (Numerical Recipes' `erfcc`): plenty for a p-value compared with 0.05.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Median by linear interpolation (as polars' linear quantile, so it equals links.json's
/// `latency_ms.p50`); `None` for an empty slice. Sorts `v`.
pub fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return None;
    }
    let pos = (n - 1) as f64 * 0.5;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (*v.get(lo)?, *v.get(hi)?);
    Some(a + (b - a) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        // Abramowitz & Stegun table 7.1: erfc(0) = 1, erfc(1) = 0.157299207,
        // erfc(1.959964) = 0.05 (the two-sided 5 % point of the normal).
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(1.959_964 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
    }

    #[test]
    fn textbook_example() {
        // Worked by hand: before {1,2,3,4}, after {5,6,7,8}: after ranks 5..8 sum 26,
        // U_after = 26 - 10 = 16 = n1*n2, mean 8, var 4*4*9/12 = 12,
        // z = (8 - 0.5)/sqrt(12) = 2.1651, p = erfc(2.1651/sqrt 2) = 0.030383.
        let r = mann_whitney(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]).unwrap();
        assert_eq!((r.n_before, r.n_after), (4, 4));
        assert_eq!(r.u_after, 16.0);
        assert!((r.z - 2.165_063_5).abs() < 1e-6);
        assert!((r.p_value - 0.030_383).abs() < 1e-5, "{}", r.p_value);
        assert_eq!(r.prob_after_slower, 1.0);
        // Swapped: same p, the other direction.
        let s = mann_whitney(&[5.0, 6.0, 7.0, 8.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.u_after, 0.0);
        assert!((s.p_value - r.p_value).abs() < 1e-12);
        assert!(s.z < 0.0);
    }

    #[test]
    fn ties_use_average_ranks_and_the_corrected_variance() {
        // before {1,2,2}, after {2,3}: ranks 1, 3,3,3, 5; after ranks 3+5 = 8,
        // U_after = 8 - 3 = 5; ties: one run of 3 -> 24; n = 5:
        // var = 3*2/12 * (6 - 24/20) = 2.4; z = (5 - 3 - 0.5)/sqrt(2.4) = 0.968246.
        let r = mann_whitney(&[1.0, 2.0, 2.0], &[2.0, 3.0]).unwrap();
        assert_eq!(r.u_after, 5.0);
        assert!((r.z - 0.968_245_8).abs() < 1e-6);
    }

    #[test]
    fn identical_samples_give_p_one() {
        let a = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let r = mann_whitney(&a, &a).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.z, 0.0);
        assert_eq!(r.prob_after_slower, 0.5);
        assert_eq!(mann_whitney(&[2.0; 5], &[2.0; 3]).unwrap().p_value, 1.0);
    }

    #[test]
    fn empty_or_non_finite_sides_give_no_test() {
        assert!(mann_whitney(&[], &[1.0]).is_none());
        assert!(mann_whitney(&[f64::NAN], &[1.0]).is_none());
    }

    #[test]
    fn median_interpolates() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [7.0]), Some(7.0));
        assert_eq!(median(&mut []), None);
    }
}
