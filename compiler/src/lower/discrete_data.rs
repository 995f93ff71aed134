//! Whether the elements of a data set can stand for booleans or counts, found once per data
//! set: an observation read from a set whose every element passes needs no checks per row
//! (`FunctionLowerer::check_discrete`). This module only scans values; it emits nothing.

use std::cell::RefCell;
use std::sync::Arc;

use super::value::Element;

/// The data sets scanned so far.
#[derive(Default)]
pub(super) struct DiscreteData {
    scanned: RefCell<Vec<Scanned>>,
}

/// A data set, held so that its address stays its own, with the first element found not to
/// stand for an `element`.
struct Scanned {
    values: Arc<Vec<f64>>,
    element: Element,
    failure: Option<usize>,
}

impl DiscreteData {
    /// The index of the first element of `values` that cannot stand for an `element`, if any;
    /// a data set is scanned once per kind, however many objectives read it.
    pub(super) fn first_failure(&self, values: &Arc<Vec<f64>>, element: Element) -> Option<usize> {
        let found = self.scanned.borrow().iter().find_map(|scanned| {
            (Arc::ptr_eq(&scanned.values, values) && scanned.element == element).then_some(scanned.failure)
        });
        found.unwrap_or_else(|| {
            let failure = first_failure(values, element);
            self.scanned.borrow_mut().push(Scanned { values: values.clone(), element, failure });
            failure
        })
    }
}

/// Whether `x` passes the checks of an observed `element`: 0 or 1 (−0 too) for a boolean; a
/// whole number of at most 2^53 in size for a count. NaN and ±∞ pass neither.
#[inline(always)]
fn passes(x: f64, element: Element) -> bool {
    match element {
        Element::Bool => x == 0.0 || x == 1.0,
        Element::Int => x.trunc() == x && x.abs() <= 9_007_199_254_740_992.0,
    }
}

/// Elements per block of the scan: a block is checked without a branch per element (a pass the
/// compiler vectorises), and only a failing block is searched element by element.
const BLOCK: usize = 4096;

fn first_failure(values: &[f64], element: Element) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { first_failure_avx2(values, element) };
    }
    first_failure_in_blocks(values, element)
}

/// [`first_failure_in_blocks`], compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn first_failure_avx2(values: &[f64], element: Element) -> Option<usize> {
    first_failure_in_blocks(values, element)
}

#[inline(always)]
fn first_failure_in_blocks(values: &[f64], element: Element) -> Option<usize> {
    values.chunks(BLOCK).enumerate().find_map(|(block, chunk)| {
        let all_pass = chunk.iter().fold(true, |all, x| all & passes(*x, element));
        match all_pass {
            true => None,
            false => chunk.iter().position(|x| !passes(*x, element)).map(|index| block * BLOCK + index),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_element_that_fails_is_found_in_any_block() {
        let mut values = vec![1.0; 3 * BLOCK + 5];
        assert_eq!(first_failure(&values, Element::Bool), None);
        for (index, bad) in [(3 * BLOCK + 4, 0.5), (BLOCK, 2.0), (7, f64::NAN), (0, f64::INFINITY)] {
            values[index] = bad;
            assert_eq!(first_failure(&values, Element::Bool), Some(index), "{bad} at {index}");
        }
        let counts = [3.0, -0.0, 9_007_199_254_740_992.0, -4.0];
        assert_eq!(first_failure(&counts, Element::Int), None);
        assert_eq!(first_failure(&counts, Element::Bool), Some(0));
        for bad in [2.5, 1e300, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(first_failure(&[1.0, bad], Element::Int), Some(1), "{bad}");
        }
    }

    #[test]
    fn a_data_set_is_scanned_once_per_kind() {
        let data = DiscreteData::default();
        let values = Arc::new(vec![0.0, 1.0, 2.0]);
        assert_eq!(data.first_failure(&values, Element::Bool), Some(2));
        assert_eq!(data.first_failure(&values, Element::Int), None);
        assert_eq!(data.first_failure(&values, Element::Bool), Some(2));
        assert_eq!(data.scanned.borrow().len(), 2);
        // Another set with the same values is scanned on its own.
        assert_eq!(data.first_failure(&Arc::new(vec![0.0, 1.0, 2.0]), Element::Bool), Some(2));
        assert_eq!(data.scanned.borrow().len(), 3);
    }
}
