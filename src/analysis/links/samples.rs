//! Latency samples of one group (a link, a route): exact while there are few, a DDSketch
//! past that, so a group's memory does not grow with its exchanges or calls.

use sketches_ddsketch::{Config as DDSketchConfig, DDSketch};

use super::Percentiles;

/// Values of one measure of one group. Percentiles are exact (linear interpolation, as
/// polars' `QuantileMethod::Linear`) up to [`EXACT_SAMPLES`] values; past that a DDSketch
/// (1% relative error, at most 2048 bins) takes over. Two groups' samples merge into the
/// samples of their union, whatever order they were added in.
#[derive(Clone)]
pub(crate) struct Samples {
    exact: Vec<f64>,
    sketch: Option<Box<DDSketch>>,
    /// Values kept exactly before the sketch takes over.
    bound: usize,
}

impl Default for Samples {
    fn default() -> Self {
        Samples::up_to(EXACT_SAMPLES)
    }
}

/// Samples kept exactly per group (32 KB) before the sketch takes over.
pub(crate) const EXACT_SAMPLES: usize = 4096;

impl Samples {
    /// Samples kept exactly up to `bound` values.
    pub(crate) fn up_to(bound: usize) -> Samples {
        Samples {
            exact: Vec::new(),
            sketch: None,
            bound,
        }
    }

    pub(crate) fn add(&mut self, v: f64) {
        if let Some(s) = &mut self.sketch {
            s.add(v);
            return;
        }
        self.exact.push(v);
        if self.exact.len() > self.bound {
            self.sketch_mut();
        }
    }

    /// The sketch, the exact values moved into it first.
    fn sketch_mut(&mut self) -> &mut DDSketch {
        let exact = std::mem::take(&mut self.exact);
        let sketch = self
            .sketch
            .get_or_insert_with(|| Box::new(DDSketch::new(DDSketchConfig::defaults())));
        exact.iter().for_each(|&x| sketch.add(x));
        sketch
    }

    /// Adds `other`'s values to these.
    pub(crate) fn merge(&mut self, other: Samples) {
        match other.sketch {
            None if self.sketch.is_none() => {
                self.exact.extend(other.exact);
                if self.exact.len() > self.bound {
                    self.sketch_mut();
                }
            }
            None => other.exact.iter().for_each(|&x| self.add(x)),
            Some(theirs) => {
                let ours = self.sketch_mut();
                // Same configuration on both sides, so the merge cannot fail.
                let _ = ours.merge(&theirs);
                other.exact.iter().for_each(|&x| ours.add(x));
            }
        }
    }

    pub(crate) fn percentiles(&mut self) -> Percentiles {
        match &self.sketch {
            None => percentiles(&mut self.exact),
            Some(s) => {
                let q = |q: f64| s.quantile(q).ok().flatten();
                Percentiles {
                    p50: q(0.50),
                    p95: q(0.95),
                    p99: q(0.99),
                }
            }
        }
    }
}

/// p50 / p95 / p99 with linear interpolation (polars' `QuantileMethod::Linear`).
pub(crate) fn percentiles(v: &mut [f64]) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let q = |q: f64| -> Option<f64> {
        let last = v.len().checked_sub(1)?;
        let pos = q * last as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        let (a, b) = (*v.get(lo)?, *v.get(hi)?);
        Some(a + (b - a) * (pos - lo as f64))
    };
    Percentiles {
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_linearly_like_polars() {
        // numpy.percentile([1, 2, 3, 4, 10], [50, 95, 99]) = 3, 8.8, 9.76
        let p = percentiles(&mut [10.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(p.p50, Some(3.0));
        assert!((p.p95.unwrap() - 8.8).abs() < 1e-9);
        assert!((p.p99.unwrap() - 9.76).abs() < 1e-9);
        assert_eq!(percentiles(&mut []).p50, None);
        assert_eq!(percentiles(&mut [7.0]).p99, Some(7.0));
    }

    fn filled(values: impl IntoIterator<Item = f64>) -> Samples {
        let mut s = Samples::default();
        values.into_iter().for_each(|v| s.add(v));
        s
    }

    #[test]
    fn merged_samples_equal_the_samples_of_the_union() {
        let value = |i: usize| ((i * 7919) % 1000) as f64 / 10.0 + 0.5;
        // Both exact; one side sketched; both sketched; past the exact bound on merging.
        for (a, b) in [(10, 20), (5000, 30), (30, 5000), (5000, 6000), (3000, 3000)] {
            let mut merged = filled((0..a).map(value));
            merged.merge(filled((a..a + b).map(value)));
            let whole = filled((0..a + b).map(value));
            let (m, w) = (merged.clone().percentiles(), whole.clone().percentiles());
            for (x, y) in [(m.p50, w.p50), (m.p95, w.p95), (m.p99, w.p99)] {
                let (x, y) = (x.unwrap(), y.unwrap());
                assert!((x - y).abs() <= 1e-9 * y.max(1.0), "{a}+{b}: {x} vs {y}");
            }
            assert_eq!(merged.sketch.is_some(), a + b > EXACT_SAMPLES, "{a}+{b}");
        }
    }

    #[test]
    fn sketched_percentiles_stay_within_one_percent() {
        let mut values: Vec<f64> = (0..20_000)
            .map(|i| 0.2 + (i as f64).powf(1.3) / 50.0)
            .collect();
        let mut s = filled(values.iter().copied());
        let (got, exact) = (s.percentiles(), percentiles(&mut values));
        for (g, e) in [
            (got.p50, exact.p50),
            (got.p95, exact.p95),
            (got.p99, exact.p99),
        ] {
            let (g, e) = (g.unwrap(), e.unwrap());
            assert!((g - e).abs() <= 0.0101 * e, "{g} vs {e}");
        }
    }
}
