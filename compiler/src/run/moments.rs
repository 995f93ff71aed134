//! Streaming statistics: the running mean and sum of squared deviations of each element of a
//! stream of equally long draws (Welford), and the merge of two such summaries (Chan, Golub and
//! LeVeque). Memory is O(1) in the number of draws.
//!
//! Callers accumulate fixed-size chunks of draws in draw order and merge the chunks in chunk
//! order, so a result depends only on the draws, never on which thread summarised which chunk.
//! This module must not know where draws come from.

use super::output::Statistic;

#[derive(Clone, Debug, Default)]
pub struct Moments {
    count: u64,
    mean: Vec<f64>,
    squares: Vec<f64>,
    /// The sum of an element's infinite draws (0 while there are none, ±∞, or NaN for both
    /// signs): they are left out of its mean, which is then reported as this.
    infinite: Vec<f64>,
}

impl Moments {
    /// An empty summary of draws with `len` elements each. Threads summarise chunks side by
    /// side, so its memory shares no cache line with another summary's.
    pub fn new(len: usize) -> Moments {
        Moments {
            count: 0,
            mean: ppl_runtime::memory::zeros_apart(len),
            squares: ppl_runtime::memory::zeros_apart(len),
            infinite: ppl_runtime::memory::zeros_apart(len),
        }
    }

    /// Forgets every draw, keeping the memory.
    pub fn clear(&mut self) {
        self.count = 0;
        self.mean.fill(0.0);
        self.squares.fill(0.0);
        self.infinite.fill(0.0);
    }

    /// Adds one draw, element by element.
    pub fn add(&mut self, draw: &[f64]) {
        self.count += 1;
        let weight = 1.0 / self.count as f64;
        let elements = self.mean.iter_mut().zip(self.squares.iter_mut()).zip(self.infinite.iter_mut());
        for (((mean, squares), infinite), x) in elements.zip(draw) {
            if x.is_infinite() {
                *infinite += x;
                continue;
            }
            let delta = x - *mean;
            *mean += delta * weight;
            *squares += delta * (x - *mean);
        }
    }

    /// Adds the draws `other` summarises, as if they had come after these.
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        for (infinite, other) in self.infinite.iter_mut().zip(&other.infinite) {
            *infinite += other;
        }
        if self.count == 0 {
            self.count = other.count;
            self.mean.copy_from_slice(&other.mean);
            self.squares.copy_from_slice(&other.squares);
            return;
        }
        let (a, b) = (self.count as f64, other.count as f64);
        let total = a + b;
        for ((mean, squares), (other_mean, other_squares)) in
            self.mean.iter_mut().zip(self.squares.iter_mut()).zip(other.mean.iter().zip(&other.squares))
        {
            let delta = other_mean - *mean;
            *mean += delta * (b / total);
            *squares += other_squares + delta * delta * (a * b / total);
        }
        self.count += other.count;
    }

    /// The mean and standard error of element `index` (an error of NaN — unknown — for one
    /// draw, NaN for both without draws). An element with infinite draws has their sign as its mean (NaN if
    /// they have both signs) and an infinite error.
    pub fn statistic(&self, index: usize) -> Statistic {
        if self.count == 0 {
            return Statistic { mean: f64::NAN, stderr: f64::NAN };
        }
        let infinite = self.infinite.get(index).copied().unwrap_or(0.0);
        if infinite != 0.0 {
            return Statistic { mean: infinite, stderr: f64::INFINITY };
        }
        let mean = self.mean.get(index).copied().unwrap_or(f64::NAN);
        let n = self.count as f64;
        let stderr = match self.squares.get(index) {
            Some(squares) if self.count > 1 => (squares / (n - 1.0) / n).sqrt(),
            _ => f64::NAN,
        };
        Statistic { mean, stderr }
    }

    /// The variance of one draw's element `index` (unbiased; NaN for fewer than two draws,
    /// infinite if a draw was).
    pub fn variance(&self, index: usize) -> f64 {
        if self.infinite.get(index).is_some_and(|infinite| *infinite != 0.0) {
            return f64::INFINITY;
        }
        match self.squares.get(index) {
            Some(squares) if self.count > 1 => squares / (self.count - 1) as f64,
            _ => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Moments;

    fn draws(n: usize) -> Vec<[f64; 2]> {
        (0..n).map(|i| [1e6 + (i as f64 * 0.37).sin(), (i % 7) as f64 - 3.0]).collect()
    }

    #[test]
    fn matches_the_two_pass_formulas() {
        let draws = draws(1000);
        let mut moments = Moments::new(2);
        for draw in &draws {
            moments.add(draw);
        }
        for element in 0..2 {
            let n = draws.len() as f64;
            let mean = draws.iter().map(|d| d[element]).sum::<f64>() / n;
            let variance = draws.iter().map(|d| (d[element] - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let statistic = moments.statistic(element);
            assert!((statistic.mean - mean).abs() <= 1e-9 * mean.abs().max(1.0), "{statistic:?} vs {mean}");
            let stderr = (variance / n).sqrt();
            assert!((statistic.stderr - stderr).abs() <= 1e-9 * stderr, "{statistic:?} vs {stderr}");
        }
    }

    #[test]
    fn merging_chunks_agrees_with_one_pass() {
        let draws = draws(1000);
        let mut whole = Moments::new(2);
        for draw in &draws {
            whole.add(draw);
        }
        let mut merged = Moments::new(2);
        let mut chunk = Moments::new(2);
        for part in draws.chunks(64) {
            chunk.clear();
            for draw in part {
                chunk.add(draw);
            }
            merged.merge(&chunk);
        }
        assert_eq!(merged.count, 1000);
        for element in 0..2 {
            let (a, b) = (whole.statistic(element), merged.statistic(element));
            assert!((a.mean - b.mean).abs() <= 1e-9 * a.mean.abs().max(1.0), "{a:?} vs {b:?}");
            assert!((a.stderr - b.stderr).abs() <= 1e-9 * a.stderr, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn infinite_draws_make_an_infinite_mean() {
        let mut moments = Moments::new(2);
        let mut chunk = Moments::new(2);
        for draw in [[1.0, 2.0], [f64::INFINITY, 3.0], [2.0, f64::NEG_INFINITY]] {
            chunk.add(&draw);
        }
        moments.merge(&chunk);
        chunk.clear();
        chunk.add(&[3.0, f64::INFINITY]);
        moments.merge(&chunk);
        assert_eq!(moments.statistic(0).mean, f64::INFINITY);
        assert_eq!(moments.statistic(0).stderr, f64::INFINITY);
        assert!(moments.statistic(1).mean.is_nan(), "+∞ and −∞: no mean");
    }

    #[test]
    fn one_draw_has_no_standard_error() {
        let mut moments = Moments::new(1);
        moments.add(&[2.5]);
        assert_eq!(moments.statistic(0).mean, 2.5);
        assert!(moments.statistic(0).stderr.is_nan());
        assert!(moments.variance(0).is_nan());
        moments.add(&[3.5]);
        assert_eq!(moments.variance(0), 0.5);
    }
}
