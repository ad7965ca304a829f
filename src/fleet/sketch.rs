//! Latency quantiles of the fleet from a DDSketch kept as a group-by: the query engine
//! counts values per logarithmic bucket (`bucket_sql`), so partial counts from any number
//! of executors add up exactly, and only (link, bucket, count) rows come back. The
//! quantile read from the buckets is within `RELATIVE_ACCURACY` of the value of the rank
//! it falls on (DDSketch, Masson et al., VLDB 2019).
//!
//! Hand-written rather than `sketches-ddsketch` (used for the traced links): that crate
//! builds its buckets from values one by one and cannot take counts per bucket computed
//! elsewhere; the mapping here is the same (log base gamma, 1% relative accuracy).

/// The sketch's relative accuracy: a quantile is within 1% of a value of the right rank.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Values at or below this (ms) go to the zero bucket, reported as 0.
pub const MIN_VALUE_MS: f64 = 1e-6;

/// The bucket key of the zero bucket.
pub const ZERO_BUCKET: i64 = i64::MIN;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bucket key of `value_ms` (ceil of log base gamma); what `bucket_sql` computes.
pub fn bucket(value_ms: f64) -> i64 {
    if value_ms <= MIN_VALUE_MS {
        ZERO_BUCKET
    } else {
        (value_ms.ln() / gamma().ln()).ceil() as i64
    }
}

/// SQL for the bucket key of the expression `value_ms` (a DOUBLE, in ms); NULL stays NULL.
pub fn bucket_sql(value_ms: &str) -> String {
    format!(
        "CASE WHEN {v} IS NULL THEN NULL WHEN {v} <= {min:e} THEN {zero} \
         ELSE CAST(ceil(ln({v}) / {lg:.17}) AS BIGINT) END",
        v = value_ms,
        min = MIN_VALUE_MS,
        zero = ZERO_BUCKET,
        lg = gamma().ln()
    )
}

/// The value a bucket stands for: within `RELATIVE_ACCURACY` of every value in it.
pub fn bucket_value(key: i64) -> f64 {
    if key == ZERO_BUCKET {
        0.0
    } else {
        let g = gamma();
        2.0 * g.powf(key as f64) / (g + 1.0)
    }
}

/// Counts per bucket of one measure of one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets {
    /// (bucket key, count), any order, keys may repeat (partial counts).
    pub counts: Vec<(i64, u64)>,
}

impl Buckets {
    pub fn add(&mut self, key: i64, count: u64) {
        self.counts.push((key, count));
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c).sum()
    }

    /// The `q` quantile (0..=1): the bucket holding the value of rank floor(q (n - 1))
    /// (0-based, as DDSketch ranks); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.total();
        if n == 0 {
            return None;
        }
        let mut sorted = self.counts.clone();
        sorted.sort_unstable_by_key(|(k, _)| *k);
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for (k, c) in sorted {
            seen += c;
            if seen > rank {
                return Some(bucket_value(k));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_within_the_accuracy_of_its_bucket() {
        for v in [0.0021, 0.5, 1.0, 3.7, 42.0, 999.9, 123_456.0] {
            let est = bucket_value(bucket(v));
            assert!((est - v).abs() <= RELATIVE_ACCURACY * v, "{v} -> {est}");
        }
        assert_eq!(bucket(0.0), ZERO_BUCKET);
        assert_eq!(bucket_value(ZERO_BUCKET), 0.0);
    }

    #[test]
    fn split_counts_give_the_same_quantiles_as_one_sketch() {
        let values: Vec<f64> = (1..=1000).map(|i| f64::from(i) * 0.37).collect();
        let mut whole = Buckets::default();
        let mut parts = Buckets::default();
        for v in &values {
            whole.add(bucket(*v), 1);
        }
        // Two "executors": odd and even rows, each pre-aggregated.
        let mut halves: [std::collections::BTreeMap<i64, u64>; 2] = Default::default();
        for (i, v) in values.iter().enumerate() {
            *halves[i % 2].entry(bucket(*v)).or_default() += 1;
        }
        for h in &halves {
            for (k, c) in h {
                parts.add(*k, *c);
            }
        }
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            assert_eq!(whole.quantile(q), parts.quantile(q));
            let exact = values[(q * 999.0).floor() as usize];
            let est = parts.quantile(q).unwrap();
            assert!(
                (est - exact).abs() <= RELATIVE_ACCURACY * exact,
                "q {q}: {est} vs {exact}"
            );
        }
    }
}
