//! The program's parameters, laid out once in one flat buffer: declaration order, each a real,
//! a vector or a row-major matrix. Every command reads them from here and training updates
//! them here in place; run-time values are made from it only for the interpreter and reports.
//!
//! For single-precision products it also keeps the values rounded to f32, made once per change
//! of the values rather than by every product that reads a weight ([`Params::round`]), and
//! hands both to compiled code as its [`FlatParams`]. A training in single precision may move
//! the rounded values alone of a weight that compiled code reads only rounded
//! ([`Params::rounded_mut`]): its f64 values are then behind until [`Params::catch_up`], which
//! every reader but compiled code's steps must wait for.
//!
//! This module owns the layout and that copy; it must not know how parameters are trained or
//! printed.

use crate::codegen::FlatParams;
use crate::interp::RuntimeValue;
use crate::ir::Type;

#[derive(Clone, Debug)]
pub struct Params {
    values: Vec<f64>,
    /// Each parameter's offset in `values` and type.
    entries: Vec<(usize, Type)>,
    /// `values` rounded to f32, if `rounded_is_current`: no change since [`Params::round`].
    rounded: Vec<f32>,
    rounded_is_current: bool,
    /// The parameters whose values are behind their rounded copy (see [`Params::rounded_mut`]).
    behind: Vec<usize>,
}

impl Params {
    /// Zero-valued parameters of the given types.
    pub fn zeros(types: impl IntoIterator<Item = Type>) -> Params {
        let mut entries = Vec::new();
        let mut len = 0;
        for ty in types {
            entries.push((len, ty));
            len += ty.elements();
        }
        Params { values: vec![0.0; len], entries, rounded: Vec::new(), rounded_is_current: false, behind: Vec::new() }
    }

    /// All values, in the order compiled functions take them.
    pub fn flat(&self) -> &[f64] {
        self.check_current();
        &self.values
    }

    /// All values as compiled functions read them in place: with their rounded copy if it is
    /// current. (Values behind their copy are read by none: see [`Params::rounded_mut`].)
    pub fn in_place(&self) -> FlatParams<'_> {
        FlatParams { values: &self.values, rounded: self.rounded_is_current.then_some(&self.rounded[..]) }
    }

    /// Rounds the values to f32 for [`Params::in_place`], unless they have not changed since
    /// the last time: before each command and each training step, when products are in single
    /// precision.
    pub fn round(&mut self) {
        if !self.rounded_is_current {
            self.rounded.resize(self.values.len(), 0.0);
            ppl_runtime::round_to_single(&self.values, &mut self.rounded);
            self.rounded_is_current = true;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn ty(&self, index: usize) -> Option<Type> {
        self.entries.get(index).map(|(_, ty)| *ty)
    }

    /// The values of parameter `index` (empty if there is none).
    pub fn get(&self, index: usize) -> &[f64] {
        self.check_current();
        match self.entries.get(index) {
            Some((offset, ty)) => &self.values[*offset..offset + ty.elements()],
            None => &[],
        }
    }

    pub fn get_mut(&mut self, index: usize) -> &mut [f64] {
        // Every rounded copy is about to be out of date, and rounding again reads the values.
        self.catch_up();
        self.rounded_is_current = false;
        match self.entries.get(index) {
            Some((offset, ty)) => &mut self.values[*offset..offset + ty.elements()],
            None => &mut [],
        }
    }

    /// Parameter `index`'s values and, if it is current, their rounded copy, for a caller that
    /// writes both (an optimizer's update with its copy, in one pass): the copy stays current.
    pub(crate) fn get_mut_with_rounded(&mut self, index: usize) -> (&mut [f64], Option<&mut [f32]>) {
        self.catch_up_with(index);
        let Some((offset, ty)) = self.entries.get(index).copied() else { return (&mut [], None) };
        let range = offset..offset + ty.elements();
        let rounded = self.rounded_is_current.then(|| &mut self.rounded[range.clone()]);
        (&mut self.values[range], rounded)
    }

    /// Parameter `index`'s rounded copy, if it is current, for a caller that moves the rounded
    /// values alone: an optimizer in single precision, which computes on them, of a weight that
    /// compiled code reads only rounded (`Kernel::reads_only_rounded`). Writing the f64 values
    /// too would cost every step of a training a pass over the network; instead they are
    /// behind, and only compiled code that reads the parameter rounded may run until
    /// [`Params::catch_up`] (the other readers here check that in debug builds).
    pub(crate) fn rounded_mut(&mut self, index: usize) -> Option<&mut [f32]> {
        let (offset, ty) = self.entries.get(index).copied()?;
        if !self.rounded_is_current {
            return None;
        }
        if !self.behind.contains(&index) {
            self.behind.push(index);
        }
        Some(&mut self.rounded[offset..offset + ty.elements()])
    }

    /// Brings the values behind their rounded copy up to it (exactly: an f32 number widens to
    /// itself).
    pub fn catch_up(&mut self) {
        while let Some(&index) = self.behind.last() {
            self.catch_up_with(index);
        }
    }

    /// Brings parameter `index`'s values up to its rounded copy if they are behind it.
    fn catch_up_with(&mut self, index: usize) {
        let Some(position) = self.behind.iter().position(|behind| *behind == index) else { return };
        self.behind.swap_remove(position);
        if let Some((offset, ty)) = self.entries.get(index).copied() {
            let range = offset..offset + ty.elements();
            ppl_runtime::widen_from_single(&self.rounded[range.clone()], &mut self.values[range]);
        }
    }

    fn check_current(&self) {
        debug_assert!(self.behind.is_empty(), "parameters {:?} read while behind their rounded copy", self.behind);
    }

    /// Sets parameter `index` from a run-time value of its shape; false (and nothing changed)
    /// if the value does not have exactly that shape.
    pub fn set(&mut self, index: usize, value: &RuntimeValue) -> bool {
        // An integer stands for a real (`param p: real = 1;`).
        let converted = match value {
            RuntimeValue::Int(n) => [*n as f64],
            _ => [0.0],
        };
        let (data, fits): (&[f64], bool) = match (self.ty(index), value) {
            (Some(Type::Real), RuntimeValue::Real(x)) => (std::slice::from_ref(x), true),
            (Some(Type::Real), RuntimeValue::Int(_)) => (&converted[..], true),
            (Some(Type::Vec(n)), RuntimeValue::Vec(data)) => (data, data.len() == n as usize),
            (Some(Type::Mat(m, n)), RuntimeValue::Mat { rows, cols, data }) => {
                (data, *rows == m as usize && *cols == n as usize && data.len() == rows * cols)
            }
            _ => (&[], false),
        };
        if fits {
            self.get_mut(index).copy_from_slice(data);
        }
        fits
    }

    /// Parameter `index` as a run-time value.
    pub fn value(&self, index: usize) -> RuntimeValue {
        RuntimeValue::from_reals(self.ty(index).unwrap_or(Type::Real), self.get(index))
    }

    /// Every parameter as a run-time value, in order: the leading arguments of a compiled
    /// function for the interpreter.
    pub fn values(&self) -> Vec<RuntimeValue> {
        (0..self.len()).map(|index| self.value(index)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounded copy is handed to compiled code only while it is current: after `round`,
    /// until a value changes.
    #[test]
    fn the_rounded_copy_is_current_from_round_to_the_next_change() {
        let mut params = Params::zeros([Type::Real, Type::Vec(3)]);
        assert!(params.in_place().rounded.is_none(), "never rounded");
        params.get_mut(1).copy_from_slice(&[0.1, 0.2, 0.3]);
        params.round();
        let rounded = params.in_place().rounded.map(<[f32]>::to_vec);
        assert_eq!(rounded, Some(vec![0.0, 0.1f64 as f32, 0.2f64 as f32, 0.3f64 as f32]));
        params.get_mut(0)[0] = 1.0;
        assert!(params.in_place().rounded.is_none(), "changed through get_mut");
        params.round();
        assert!(params.set(0, &RuntimeValue::Real(2.0)));
        assert!(params.in_place().rounded.is_none(), "changed through set");
        params.round();
        let (values, rounded) = params.get_mut_with_rounded(1);
        values[0] = 0.5;
        rounded.expect("current")[0] = 0.5;
        assert_eq!(params.in_place().rounded.map(|rounded| rounded[1]), Some(0.5), "written together");
    }

    /// Values moved through their rounded copy alone are behind it until they catch up: all
    /// at once, or one parameter as a caller takes it to write.
    #[test]
    fn values_moved_rounded_catch_up_with_their_copy() {
        let mut params = Params::zeros([Type::Vec(2), Type::Vec(2)]);
        assert!(params.rounded_mut(0).is_none(), "no current copy to move");
        params.round();
        params.rounded_mut(0).expect("current").copy_from_slice(&[0.25, 0.1]);
        params.rounded_mut(1).expect("current").copy_from_slice(&[1.5, 2.0]);
        assert_eq!(params.in_place().values, [0.0; 4], "behind");
        assert_eq!(params.in_place().rounded.map(<[f32]>::to_vec), Some(vec![0.25, 0.1, 1.5, 2.0]));
        let (values, _) = params.get_mut_with_rounded(1);
        assert_eq!(values, [1.5, 2.0], "caught up, as it is taken");
        assert_eq!(params.in_place().values[..2], [0.0, 0.0], "the other is still behind");
        params.catch_up();
        assert_eq!(params.flat(), [0.25, f64::from(0.1f32), 1.5, 2.0]);
        assert!(params.in_place().rounded.is_some(), "the copy stays current");
        // A change that leaves the copy out of date brings every value up first: rounding
        // again must not round values that are behind.
        params.rounded_mut(0).expect("current")[0] = 4.0;
        params.get_mut(1)[0] = 3.0;
        params.round();
        assert_eq!(params.flat(), [4.0, f64::from(0.1f32), 3.0, 2.0]);
        assert_eq!(params.in_place().rounded.map(<[f32]>::to_vec), Some(vec![4.0, 0.1, 3.0, 2.0]));
    }
}
