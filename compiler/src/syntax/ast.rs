//! The abstract syntax tree: what the parser builds and the type checker reads.
//!
//! It mirrors the surface syntax one to one (so the formatter can print it back) and keeps a
//! span on every node. It holds no types and no resolved names: the checker records those in
//! side tables keyed by [`ExprId`], as rust-analyzer's inference results do, so later stages
//! can look up the type of any expression without the tree changing shape.

use super::span::Span;

/// Identifies one expression node within a parsed file; dense, so side tables can be vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub items: Vec<Item>,
    /// How many expressions the parser numbered: every `ExprId` is below this.
    pub expr_count: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
    /// The text of the `///` comments directly above the item, markers stripped.
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    Gen(FnDef),
    Fn(FnDef),
    Param(Binding),
    Data(Binding),
    Let(Binding),
    /// `type NAME = TYPE;`: another name for a type.
    Type(TypeAlias),
    Print(Vec<Expr>),
    Optimize(Optimize),
    /// An item the parser could not make sense of; its error has been reported.
    Error,
}

/// A `gen` or `fn` definition.
#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    pub name: Ident,
    pub params: Vec<FnParam>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnParam {
    pub name: Ident,
    /// `None` makes the function generic in this argument.
    pub ty: Option<TypeExpr>,
}

/// `param NAME: T = e;`, `data NAME [: T] = e;`, `let NAME [: T] = e;` at top level.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub value: Expr,
}

/// `type NAME = TYPE;` at top level.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeAlias {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Maximize,
    Minimize,
}

/// `maximize EST [wrt [a, b]], … with { option: value, … };`
#[derive(Clone, Debug, PartialEq)]
pub struct Optimize {
    pub direction: Direction,
    pub objectives: Vec<Objective>,
    pub options: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    pub expr: Expr,
    /// The parameters trained: names of `param`s, or of a record parameter's parts
    /// (`net.w1`, held as one identifier with its dots and the span of the whole path).
    pub wrt: Option<Vec<Ident>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExprKind {
    /// `real`, `int`, `bool`, `est`, a `type` alias, or a name the checker will reject.
    Named(Ident),
    Vec(Dim),
    Mat(Dim, Dim),
    /// `[int; n]`, `[bool; n]`: a vector of discrete values.
    Array(Box<TypeExpr>, Dim),
    Tuple(Vec<TypeExpr>),
    Record(Vec<(Ident, TypeExpr)>),
}

/// A dimension in a type: an integer literal or the name of a compile-time constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    Literal(u64, Span),
    Name(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    /// The final expression, the block's value; `None` makes the block `()`.
    pub tail: Option<Box<Expr>>,
    pub span: Span,
}

impl Block {
    /// Whether every path through the block runs a `return`, so that its end is never reached.
    pub fn always_returns(&self) -> bool {
        self.stmts.iter().any(Stmt::always_returns) || self.tail.as_deref().is_some_and(Expr::always_returns)
    }

    /// Whether a `return` can run before the end of the function whose body this is: any
    /// `return` but a final `return e;`.
    pub fn returns_early(&self) -> bool {
        match self.stmts.split_last() {
            Some((last, before)) if self.tail.is_none() && matches!(last.kind, StmtKind::Return(_)) => {
                before.iter().any(Stmt::contains_return) || last.contains_return_below()
            }
            _ => self.contains_return(),
        }
    }

    /// Whether a `return` statement occurs in the block, at any depth outside `E { … }` (where
    /// one is an error: it has no function to return from).
    pub fn contains_return(&self) -> bool {
        self.stmts.iter().any(Stmt::contains_return) || self.tail.as_deref().is_some_and(Expr::contains_return)
    }
}

impl Stmt {
    /// Whether every path through the statement runs a `return`.
    pub fn always_returns(&self) -> bool {
        match &self.kind {
            StmtKind::Return(_) => true,
            StmtKind::Let { value: expr, .. } | StmtKind::Expr(expr) => expr.always_returns(),
            StmtKind::Choice { .. } | StmtKind::For { .. } => false,
        }
    }

    /// Whether a `return` statement is this statement or occurs in it (outside `E { … }`).
    pub fn contains_return(&self) -> bool {
        matches!(self.kind, StmtKind::Return(_)) || self.contains_return_below()
    }

    /// Whether a `return` statement occurs inside this statement's parts.
    fn contains_return_below(&self) -> bool {
        match &self.kind {
            StmtKind::Let { value: expr, .. } | StmtKind::Return(expr) | StmtKind::Expr(expr) => expr.contains_return(),
            StmtKind::Choice { address, dist, via } => {
                address.index.as_ref().is_some_and(Expr::contains_return)
                    || dist.contains_return()
                    || via.iter().flat_map(|via| via.args.iter().flatten()).any(|arg| arg.value.contains_return())
            }
            StmtKind::For { lo, hi, body, .. } => {
                lo.contains_return() || hi.contains_return() || body.contains_return()
            }
        }
    }
}

impl Expr {
    /// Whether every path through the expression runs a `return` (a block that does, or an
    /// `if` both of whose branches do).
    pub fn always_returns(&self) -> bool {
        match &self.kind {
            ExprKind::Block(block) => block.always_returns(),
            ExprKind::If { then, otherwise: Some(otherwise), .. } => {
                then.always_returns() && otherwise.always_returns()
            }
            _ => false,
        }
    }

    /// Whether a `return` statement occurs in the expression (outside `E { … }`).
    pub fn contains_return(&self) -> bool {
        match &self.kind {
            ExprKind::Expect(_) => false,
            ExprKind::Block(block) => block.contains_return(),
            ExprKind::If { cond, then, otherwise } => {
                cond.contains_return()
                    || then.contains_return()
                    || otherwise.as_deref().is_some_and(Expr::contains_return)
            }
            _ => super::visit::child_exprs(self).into_iter().any(Expr::contains_return),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Let {
        pattern: Pattern,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    /// `ADDR ~ EXPR [via ESTIMATOR];`
    Choice {
        address: Address,
        dist: Expr,
        via: Option<Via>,
    },
    For {
        var: Pattern,
        lo: Expr,
        hi: Expr,
        body: Block,
    },
    Return(Expr),
    /// An expression evaluated for its effect; `if`/block forms need no `;`.
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Name(Ident),
    Wildcard(Span),
    Tuple(Vec<Pattern>, Span),
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Name(ident) => ident.span,
            Pattern::Wildcard(span) | Pattern::Tuple(_, span) => *span,
        }
    }
}

/// The left of `~`: an address, indexed inside loops (`y[i] ~ …`).
#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    pub name: Ident,
    pub index: Option<Expr>,
}

/// `via NAME` or `via NAME(args)`: which gradient estimator a choice uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Via {
    pub estimator: Ident,
    pub args: Option<Vec<Arg>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub id: ExprId,
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Real(f64),
    Bool(bool),
    Str(String),
    Name(String),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// Calls are first order: the callee is always a name (function, distribution, built-in).
    Call {
        callee: Ident,
        args: Vec<Arg>,
    },
    Index {
        base: Box<Expr>,
        indices: Vec<Expr>,
    },
    /// `e.name` on records and traces, `e.0` on tuples.
    Field {
        base: Box<Expr>,
        field: Ident,
    },
    Vector(Vec<Expr>),
    /// `lo..hi`, `lo..`, `..hi` or `..`: a slice, only as an index (`v[0..10]`, `m[.., j]`).
    Range {
        lo: Option<Box<Expr>>,
        hi: Option<Box<Expr>>,
    },
    /// `[body for var in lo..hi]`
    Comprehension {
        body: Box<Expr>,
        var: Pattern,
        lo: Box<Expr>,
        hi: Box<Expr>,
    },
    Record(Vec<Field>),
    /// `(a, b)`; the empty tuple is `()`.
    Tuple(Vec<Expr>),
    Block(Block),
    If {
        cond: Box<Expr>,
        then: Block,
        otherwise: Option<Box<Expr>>,
    },
    /// `E { … }`: an expectation, the estimator the rest of the compiler differentiates.
    Expect(Block),
}

impl ExprKind {
    /// Forms that end in a block and so need no `;` when used as statements.
    pub fn is_block_like(&self) -> bool {
        matches!(self, ExprKind::Block(_) | ExprKind::If { .. } | ExprKind::Expect(_))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: Ident,
    pub value: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Merge,
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
    Pow,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Merge => "++",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::MatMul => "@",
            BinaryOp::Pow => "^",
        }
    }

    /// Binding strength: higher binds tighter. Unary operators sit between `*` and `^`.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 3,
            BinaryOp::Merge => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::MatMul => 6,
            BinaryOp::Pow => 8,
        }
    }

    pub fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }
}

/// The precedence of prefix `-` and `!`: tighter than `*`, looser than `^` (`-x^2` is `-(x^2)`).
pub const UNARY_PRECEDENCE: u8 = 7;
