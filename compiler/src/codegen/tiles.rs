//! Tiled runs: consecutive elementwise instructions of the top level over matrices of one shape
//! (as `ir::schedule` gathers them) run a few rows at a time. Each instruction calls the shim it
//! calls alone, on the rows of the tile, so every element gets the same bits as the instructions
//! one after another would give it (the shims compute each element on its own). The values the
//! run alone reads live in tile-sized buffers, which stay in the cache, instead of in slots as
//! large as the matrix: a minibatch's likelihood and its adjoint pass over `B × 784` matrices a
//! dozen times, and each such pass would otherwise go to memory and back.
//!
//! A matrix that a single-precision product computes for the run alone is left by the product
//! in f32 and widened a tile at a time, as the run reads it (straight into the result of the
//! bias added to it, when that is its one use): the same numbers, without a pass that widens
//! the whole matrix and another that reads it back.
//!
//! This module decides the runs and their buffers (for the [`Layout`]) and emits their loops;
//! what each instruction computes is the shims', as for instructions that run alone.

use std::collections::HashMap;

use cranelift_codegen::ir::{self as cl, condcodes::IntCC, types, InstBuilder};

use super::translate::Translator;
use super::Layout;
use crate::ir::schedule::elementwise_shape;
use crate::ir::verify::IrError;
use crate::ir::{Function, Inst, Kernel, Op, Type, Value};
use ppl_runtime::Precision;

/// About how many words a tile of each matrix holds: with the two or three tiles one
/// instruction reads and writes, well inside a core's 32 KB first-level cache.
const TILE_WORDS: u32 = 1024;

/// A run of `len` instructions computing `rows × cols` matrices, `tile_rows` rows at a time.
#[derive(Debug)]
pub struct TiledRun {
    pub(super) len: usize,
    pub(super) rows: u32,
    pub(super) cols: u32,
    pub(super) tile_rows: u32,
    /// The slot offset of the tile buffer of each value that only the run reads.
    pub(super) local: HashMap<Value, usize>,
    /// The products' results the run alone reads, left in f32 (see the module's comment), each
    /// with the slot offset of the tile buffer it is widened into at the start of each tile, or
    /// `None` if the one accumulation that reads it widens it into its own result.
    pub(super) narrow: HashMap<Value, Option<usize>>,
}

impl Layout {
    /// Finds the runs of `function`'s top level worth tiling — two or more instructions, over
    /// matrices of two tiles or more — and gives each value only its run reads a tile buffer
    /// (which `share_top_level_slots` then leaves alone).
    pub(super) fn find_tiled_runs(&mut self, function: &Function) {
        let mut uses = HashMap::new();
        crate::ir::count_uses(&function.body, &mut uses);
        let insts = &function.body.insts;
        let mut start = 0;
        while start < insts.len() {
            let Some(shape @ (rows, cols)) = elementwise_shape(function, &insts[start]) else {
                start += 1;
                continue;
            };
            let len = insts[start..].iter().take_while(|inst| elementwise_shape(function, inst) == Some(shape)).count();
            let tile_rows = (TILE_WORDS / cols.max(1)).max(1);
            if len >= 2 && rows >= 2 * tile_rows {
                let run = &insts[start..start + len];
                let words = (tile_rows * cols) as usize;
                let mut reads_in_run: HashMap<Value, usize> = HashMap::new();
                for inst in run {
                    for operand in inst.op.operands() {
                        *reads_in_run.entry(operand).or_default() += 1;
                    }
                }
                let only_in_run = |value: &Value| {
                    !function.body.results.contains(value)
                        && uses.get(value).unwrap_or(&0) == reads_in_run.get(value).unwrap_or(&0)
                };
                let local = self.tile_buffers(run, only_in_run, words);
                let of_the_run = |value: &Value| function.ty(*value) == Some(Type::Mat(rows, cols));
                let read_by_run_alone = |value: &Value| reads_in_run.contains_key(value) && only_in_run(value);
                let narrow = self.narrow_inputs(&insts[..start], run, |v| of_the_run(v) && read_by_run_alone(v), words);
                self.tiled.insert(start, TiledRun { len, rows, cols, tile_rows, local, narrow });
            }
            start += len;
        }
    }

    /// A tile buffer of `words` for each value `run` computes and alone reads (or nothing reads:
    /// the sigmoid of a softplus computed in f32, say).
    fn tile_buffers(
        &mut self,
        run: &[Inst],
        only_in_run: impl Fn(&Value) -> bool,
        words: usize,
    ) -> HashMap<Value, usize> {
        let mut local = HashMap::new();
        for result in run.iter().flat_map(|inst| &inst.results) {
            if only_in_run(result) {
                local.insert(*result, self.slots_len);
                self.slots_len += words;
            }
        }
        local
    }

    /// The results of single-precision products among `before` (the instructions before `run`)
    /// that `run` reads, of its shape, and nothing else does (`read_by_run_alone`), which the
    /// products leave in f32 (`narrow_products`); each with a
    /// tile buffer of `words` to be widened into, unless its one use is as the accumulator of a
    /// bias added to it.
    fn narrow_inputs(
        &mut self,
        before: &[Inst],
        run: &[Inst],
        read_by_run_alone: impl Fn(&Value) -> bool,
        words: usize,
    ) -> HashMap<Value, Option<usize>> {
        let single = |inst: &&Inst| matches!(inst.op, Op::MatMulTransposed { precision: Precision::Single, .. });
        let products = before.iter().filter(single).filter_map(|inst| inst.results.first());
        let mut narrow = HashMap::new();
        for product in products.filter(|product| read_by_run_alone(product)) {
            let reads: Vec<&Inst> = run.iter().filter(|inst| inst.op.operands().contains(product)).collect();
            let accumulated =
                matches!(reads[..], [inst] if matches!(inst.op, Op::AddOuter { acc, .. } if acc == *product));
            let buffer = (!accumulated).then(|| {
                self.slots_len += words;
                self.slots_len - words
            });
            narrow.insert(*product, buffer);
            self.narrow_products.insert(*product);
        }
        narrow
    }

    /// Whether `value` lives in a tile buffer rather than a slot of its own.
    pub(super) fn is_tile_local(&self, value: &Value) -> bool {
        self.tiled.values().any(|run| run.local.contains_key(value))
    }
}

impl Translator<'_, '_> {
    /// The instructions of `run` (`insts`), tile by tile: a loop over the first rows of each tile.
    pub fn tiled_run(&mut self, insts: &[Inst], run: &TiledRun) -> Result<(), IrError> {
        let (header, body, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.append_block_param(header, types::I64);
        let zero = self.iconst(0);
        self.b.ins().jump(header, &[cl::BlockArg::Value(zero)]);
        self.b.switch_to_block(header);
        let first_row = self.b.block_params(header)[0];
        let running = self.b.ins().icmp_imm(IntCC::SignedLessThan, first_row, i64::from(run.rows));
        self.b.ins().brif(running, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        let rows_left = self.b.ins().irsub_imm(first_row, i64::from(run.rows));
        let tile_rows = self.iconst(i64::from(run.tile_rows));
        let rows = self.b.ins().smin(rows_left, tile_rows);
        let tile = Tile { first_row, rows, elements: self.b.ins().imul_imm(rows, i64::from(run.cols)) };
        let mut widened: Vec<(Value, usize)> =
            run.narrow.iter().filter_map(|(v, buffer)| Some((*v, (*buffer)?))).collect();
        widened.sort();
        for (value, buffer) in widened {
            let (dst, src) = (self.slot_address(buffer), self.narrow_tile_address(value, run, &tile)?);
            self.call("ppl_widen", &[dst, src, tile.elements])?;
        }
        for inst in insts {
            self.tile_inst(inst, run, &tile)?;
        }
        let next = self.b.ins().iadd_imm(first_row, i64::from(run.tile_rows));
        self.b.ins().jump(header, &[cl::BlockArg::Value(next)]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    /// One instruction of a run on one tile.
    fn tile_inst(&mut self, inst: &Inst, run: &TiledRun, tile: &Tile) -> Result<(), IrError> {
        let result =
            inst.results.first().copied().ok_or(IrError { message: "a tiled instruction has no result".into() })?;
        let dst = self.tile_address(result, run, tile)?;
        match &inst.op {
            Op::Unary(op, a) => {
                let src = self.tile_address(*a, run, tile)?;
                self.vector_unary(*op, dst, src, tile.elements)
            }
            Op::Binary(op, a, b) => {
                let (a, b) = (self.tile_operand(*a, run, tile)?, self.tile_operand(*b, run, tile)?);
                self.vector_binary(*op, dst, a, b, tile.elements)
            }
            Op::Kernel(kernel @ (Kernel::SoftplusSigmoid | Kernel::SoftplusSigmoidSingle), args) => {
                let (&[x], &[_, sigmoid]) = (args.as_slice(), inst.results.as_slice()) else {
                    return Err(IrError { message: "softplus_sigmoid takes one value and gives two".into() });
                };
                let (sigmoid, src) = (self.tile_address(sigmoid, run, tile)?, self.tile_address(x, run, tile)?);
                self.vector_softplus_sigmoid(*kernel, [dst, sigmoid], src, tile.elements)
            }
            Op::Outer(a, b) => {
                let (a, b) = (self.tile_rows_of_vector(*a, tile)?, self.address(*b)?);
                let cols = self.iconst(i64::from(run.cols));
                self.call("ppl_outer", &[dst, a, tile.rows, b, cols]).map(drop)
            }
            Op::AddOuter { acc, a, b } => {
                if run.narrow.get(acc) == Some(&None) {
                    let src = self.narrow_tile_address(*acc, run, tile)?;
                    self.call("ppl_widen", &[dst, src, tile.elements])?;
                } else if !self.layout.same_place(*acc, result) {
                    let acc = self.tile_address(*acc, run, tile)?;
                    self.call("ppl_copy", &[dst, acc, tile.elements])?;
                }
                let (a, b) = (self.tile_rows_of_vector(*a, tile)?, self.address(*b)?);
                let cols = self.iconst(i64::from(run.cols));
                self.call("ppl_add_outer", &[dst, a, tile.rows, b, cols]).map(drop)
            }
            op => Err(IrError { message: format!("{op:?} in a tiled run") }),
        }
    }

    /// Where the tile's rows of the matrix `value` are: its tile buffer, or its rows in place.
    fn tile_address(&mut self, value: Value, run: &TiledRun, tile: &Tile) -> Result<cl::Value, IrError> {
        if let Some(offset) = run.local.get(&value).or(run.narrow.get(&value).and_then(Option::as_ref)) {
            return Ok(self.slot_address(*offset));
        }
        let start = self.address(value)?;
        let offset = self.b.ins().imul_imm(tile.first_row, i64::from(run.cols) * 8);
        Ok(self.b.ins().iadd(start, offset))
    }

    /// Where the tile's rows of a product's result left in f32 are (two to a word of its slot).
    fn narrow_tile_address(&mut self, value: Value, run: &TiledRun, tile: &Tile) -> Result<cl::Value, IrError> {
        let start = self.address(value)?;
        let offset = self.b.ins().imul_imm(tile.first_row, i64::from(run.cols) * 4);
        Ok(self.b.ins().iadd(start, offset))
    }

    /// A binary operation's operand on the tile: the tile's rows of a matrix, or a scalar (of
    /// stride 0).
    fn tile_operand(&mut self, value: Value, run: &TiledRun, tile: &Tile) -> Result<(cl::Value, cl::Value), IrError> {
        match self.ty(value)? {
            Type::Mat(..) => Ok((self.tile_address(value, run, tile)?, self.iconst(1))),
            ty => self.operand_pointer(value, ty),
        }
    }

    /// Where the tile's elements of a vector indexed by row are.
    fn tile_rows_of_vector(&mut self, value: Value, tile: &Tile) -> Result<cl::Value, IrError> {
        let start = self.address(value)?;
        let offset = self.b.ins().imul_imm(tile.first_row, 8);
        Ok(self.b.ins().iadd(start, offset))
    }
}

/// The rows one iteration of a tiled run computes: from `first_row`, `rows` of them (fewer in
/// the last tile), `elements` words of each matrix.
struct Tile {
    first_row: cl::Value,
    rows: cl::Value,
    elements: cl::Value,
}
