//! The checker's driver: collects definitions, types globals lazily (in any order, with cycle
//! detection), checks each function instance once, then the commands.
//!
//! Submodules hold one concern each: `body` (scopes, statements, trace building), `expr`
//! (expressions and operators), `calls` (argument binding, distributions, built-ins and the
//! inference forms), `commands` (`print`, `maximize`), `annotations` (written types), `returns`
//! (where an early `return` may stand).

pub use calls::builtin_names;
pub(crate) use calls::INITIALISERS;

mod annotations;
mod body;
mod calls;
mod commands;
mod expr;
mod plates;
mod returns;

use std::collections::HashMap;

use super::ty::Type;
use super::{CheckedProgram, Global, Instance, ItemRef};
use crate::diagnostics::{closest_name, Diagnostic, ErrorCode};
use crate::syntax::ast::{Binding, FnDef, Item, ItemKind, Program, TypeAlias};
use crate::syntax::span::Span;
use body::{Body, BodyKind};

/// Checks the parsed files; the first `library_files` of them are the standard library,
/// whose definitions user definitions of the same name replace.
pub fn check(programs: &[&Program], library_files: usize, diagnostics: &mut Vec<Diagnostic>) -> CheckedProgram {
    let mut checker = Checker::new(programs, library_files);
    checker.collect_definitions();
    checker.check_all();
    checker.report_reached_unsupported();
    let mut found = std::mem::take(&mut checker.diagnostics);
    deduplicate(&mut found);
    diagnostics.extend(found);
    checker.output
}

/// A definition visible by name.
#[derive(Clone, Copy, Debug)]
struct Definition<'a> {
    at: ItemRef,
    item: &'a Item,
}

#[derive(Clone, Debug)]
enum GlobalState {
    InProgress,
    Done(Type, Option<i64>),
}

/// Definitions checked inside one another (a function calling a function, a global using a
/// global) beyond this depth are rejected.
const MAX_DEFINITION_DEPTH: usize = 200;

/// Key of a function instance: the definition and what its arguments are known to be.
type InstanceKey = (ItemRef, Vec<Type>, Vec<Option<i64>>);

/// Where a generic function is being checked from, for diagnostics inside its body.
struct CallSite {
    name: String,
    span: Span,
    generic: bool,
}

pub(super) struct Checker<'a> {
    programs: &'a [&'a Program],
    library_files: usize,
    definitions: HashMap<&'a str, Definition<'a>>,
    /// `type` aliases, by name: types have a namespace of their own.
    aliases: HashMap<&'a str, (ItemRef, &'a TypeAlias)>,
    /// Each alias's type once resolved; `None` while it is being resolved (to find cycles).
    alias_types: HashMap<&'a str, Option<Type>>,
    globals: HashMap<String, GlobalState>,
    instances: HashMap<InstanceKey, usize>,
    /// Definitions whose bodies are being checked, innermost last.
    in_progress: Vec<ItemRef>,
    /// How many definitions (functions and globals) are being checked inside one another.
    definition_depth: usize,
    /// How many expressions are being checked inside one another, across definitions.
    pub(super) expr_depth: usize,
    /// Whether a limit on depth or size has been reported (once is enough).
    pub(super) limit_reported: bool,
    call_stack: Vec<CallSite>,
    /// The name of each `image` of each file's `print`s, where it is first given.
    image_names: HashMap<(usize, String), Span>,
    diagnostics: Vec<Diagnostic>,
    /// Each instance's constructs the compiler cannot lower (see [`Checker::unsupported`]).
    unsupported: HashMap<usize, Vec<Diagnostic>>,
    output: CheckedProgram,
}

impl<'a> Checker<'a> {
    fn new(programs: &'a [&'a Program], library_files: usize) -> Self {
        Checker {
            programs,
            library_files,
            definitions: HashMap::new(),
            aliases: HashMap::new(),
            alias_types: HashMap::new(),
            globals: HashMap::new(),
            instances: HashMap::new(),
            in_progress: Vec::new(),
            definition_depth: 0,
            expr_depth: 0,
            limit_reported: false,
            call_stack: Vec::new(),
            image_names: HashMap::new(),
            diagnostics: Vec::new(),
            unsupported: HashMap::new(),
            output: CheckedProgram {
                top_level_types: vec![HashMap::new(); programs.len()],
                top_level_calls: vec![HashMap::new(); programs.len()],
                ..CheckedProgram::default()
            },
        }
    }

    /// Reports a diagnostic; inside a generic function instantiated from a call, it also
    /// points at that call, since the problem depends on the call's argument types.
    pub(super) fn report(&mut self, diagnostic: Diagnostic) {
        let diagnostic = self.at_call_site(diagnostic);
        self.diagnostics.push(diagnostic);
    }

    /// Labels the call of the innermost generic function being checked, if any.
    fn at_call_site(&self, diagnostic: Diagnostic) -> Diagnostic {
        match self.call_stack.iter().rev().find(|call| call.generic) {
            Some(call) => diagnostic
                .with_secondary(call.span, format!("in this call of `{}`, whose arguments fix the types", call.name)),
            None => diagnostic,
        }
    }

    /// Reports a construct that the compiler cannot lower with what this body knows (E0600):
    /// a `sir` count, comprehension length or loop bound that is not a constant. A function's
    /// instance may be one checked without a call (its untyped arguments unknown, its `int`
    /// arguments without values) that no command runs, while a call with constant arguments
    /// has an instance of its own that lowers fine; so in a function body the report waits
    /// until checking ends, and is made only if a command reaches the instance — exactly the
    /// instances `ppl run` lowers. At the top level everything is known: report it now.
    fn unsupported(&mut self, body: &mut Body, diagnostic: Diagnostic) {
        let diagnostic = self.at_call_site(diagnostic);
        match body.kind {
            BodyKind::TopLevel => self.diagnostics.push(diagnostic),
            BodyKind::Gen | BodyKind::Fn => body.unsupported.push(diagnostic),
        }
    }

    /// Reports the unsupported constructs of the instances that commands and globals call,
    /// directly or through other instances.
    fn report_reached_unsupported(&mut self) {
        let instances = &self.output.instances;
        let mut reached = vec![false; instances.len()];
        let mut pending: Vec<usize> =
            self.output.top_level_calls.iter().flat_map(|calls| calls.values().copied()).collect();
        while let Some(index) = pending.pop() {
            let (Some(seen), Some(instance)) = (reached.get_mut(index), instances.get(index)) else { continue };
            if !*seen {
                *seen = true;
                pending.extend(instance.calls.values().copied());
            }
        }
        for (index, reached) in reached.into_iter().enumerate() {
            if let Some(found) = self.unsupported.remove(&index).filter(|_| reached) {
                self.diagnostics.extend(found);
            }
        }
    }

    fn collect_definitions(&mut self) {
        let programs = self.programs;
        for (file, program) in programs.iter().enumerate() {
            let from_library = file < self.library_files;
            for (index, item) in program.items.iter().enumerate() {
                if let ItemKind::Type(alias) = &item.kind {
                    self.collect_alias(ItemRef { file, item: index }, alias);
                    continue;
                }
                let Some(name) = item_name(item) else { continue };
                let definition = Definition { at: ItemRef { file, item: index }, item };
                match self.definitions.get(name.name.as_str()) {
                    Some(previous) if previous.at.file < self.library_files && !from_library => {
                        // A user definition replaces the library's.
                        self.definitions.insert(&name.name, definition);
                    }
                    Some(previous) => {
                        let previous_span = item_name(previous.item).map_or(previous.item.span, |n| n.span);
                        self.report(
                            Diagnostic::error(
                                ErrorCode::DuplicateDefinition,
                                format!("`{}` is defined more than once", name.name),
                            )
                            .with_primary(name.span, "redefined here")
                            .with_secondary(previous_span, "first defined here")
                            .with_help("rename one of the definitions"),
                        );
                    }
                    None => {
                        self.definitions.insert(&name.name, definition);
                    }
                }
            }
        }
    }

    fn check_all(&mut self) {
        let programs = self.programs;
        for (file, program) in programs.iter().enumerate() {
            for (index, item) in program.items.iter().enumerate() {
                let at = ItemRef { file, item: index };
                let visible = item_name(item).and_then(|name| self.definitions.get(name.name.as_str())).map(|d| d.at);
                match &item.kind {
                    ItemKind::Gen(def) | ItemKind::Fn(def) if visible == Some(at) => self.check_definition(at, def),
                    ItemKind::Param(binding) | ItemKind::Data(binding) | ItemKind::Let(binding)
                        if visible == Some(at) =>
                    {
                        self.global(&binding.name.name);
                    }
                    ItemKind::Type(alias)
                        if self.aliases.get(alias.name.name.as_str()).map(|(at, _)| *at) == Some(at) =>
                    {
                        self.resolve_alias(&alias.name.name, alias.name.span);
                    }
                    ItemKind::Print(exprs) => self.check_print(file, exprs),
                    ItemKind::Optimize(optimize) => self.check_optimize(file, optimize),
                    _ => {}
                }
            }
        }
    }

    /// Checks a definition on its own: typed arguments as written, untyped ones unknown. This
    /// reports what is wrong whatever the call; calls then check it for their argument types.
    fn check_definition(&mut self, at: ItemRef, def: &'a FnDef) {
        let mut args = Vec::with_capacity(def.params.len());
        for param in &def.params {
            let ty = match &param.ty {
                Some(annotation) => self.resolve_annotation(annotation),
                None => Type::Unknown,
            };
            args.push(ty);
        }
        let constants = vec![None; args.len()];
        self.instantiate(at, args, constants, None);
    }

    /// The instance of a definition for these argument types, checked on first use.
    /// Returns `None` for a recursive use (reported) or an unknown definition.
    pub(super) fn instantiate(
        &mut self,
        at: ItemRef,
        args: Vec<Type>,
        constants: Vec<Option<i64>>,
        call: Option<(String, Span)>,
    ) -> Option<usize> {
        let def = self.definition_at(at)?;
        let key: InstanceKey = (at, args.clone(), constants.clone());
        if let Some(index) = self.instances.get(&key) {
            return Some(*index);
        }
        let (name, span) = call.clone().unwrap_or_else(|| (def.name.name.clone(), def.name.span));
        // Any recursion is rejected, not only calls with repeated argument types: `f((x, x))`
        // inside `f` would otherwise instantiate `f` forever with ever larger types.
        if self.in_progress.contains(&at) {
            self.report(
                Diagnostic::error(ErrorCode::Recursion, format!("`{name}` calls itself"))
                    .with_primary(span, "recursive call (directly or through other functions)")
                    .with_secondary(def.name.span, format!("`{name}` is defined here"))
                    .with_note("a program is compiled to straight-line code and loops, so recursion must be bounded")
                    .with_help("rewrite the recursion as a `for` loop"),
            );
            return None;
        }
        if !self.enter_definition(span) {
            return None;
        }
        self.in_progress.push(at);
        let generic = def.params.iter().any(|param| param.ty.is_none());
        let pushed = call.map(|(name, span)| self.call_stack.push(CallSite { name, span, generic })).is_some();

        let is_gen = matches!(self.item_at(at).map(|item| &item.kind), Some(ItemKind::Gen(_)));
        let kind = if is_gen { BodyKind::Gen } else { BodyKind::Fn };
        let mut body = Body::new(kind);
        for ((param, ty), constant) in def.params.iter().zip(&args).zip(&constants) {
            body.bind_parameter(self, param, ty.clone(), *constant);
        }
        let ret = self.check_function_body(&mut body, def);

        if pushed {
            self.call_stack.pop();
        }
        self.in_progress.pop();
        self.definition_depth -= 1;
        let trace = is_gen.then(|| {
            let summable = plates::summable_addresses(&def.body);
            let mut fields = body.trace.fields.clone();
            for field in &mut fields {
                field.enumerated = summable.contains(&field.name);
            }
            fields
        });
        let index = self.output.instances.len();
        if !body.unsupported.is_empty() {
            self.unsupported.insert(index, std::mem::take(&mut body.unsupported));
        }
        self.output.instances.push(Instance {
            item: at,
            args,
            constant_args: constants,
            ret,
            trace,
            types: body.types,
            calls: body.calls,
        });
        self.instances.insert(key, index);
        Some(index)
    }

    pub(super) fn instance(&self, index: usize) -> &Instance {
        &self.output.instances[index]
    }

    pub(super) fn lookup_definition(&self, name: &str) -> Option<(ItemRef, &'a Item)> {
        self.definitions.get(name).map(|definition| (definition.at, definition.item))
    }

    fn item_at(&self, at: ItemRef) -> Option<&'a Item> {
        self.programs.get(at.file).and_then(|program| program.items.get(at.item))
    }

    fn definition_at(&self, at: ItemRef) -> Option<&'a FnDef> {
        match &self.item_at(at)?.kind {
            ItemKind::Gen(def) | ItemKind::Fn(def) => Some(def),
            _ => None,
        }
    }

    /// The type (and integer value) of a `param`, `data` or `let`, checked on first use.
    pub(super) fn global(&mut self, name: &str) -> Option<(Type, Option<i64>)> {
        match self.globals.get(name) {
            Some(GlobalState::Done(ty, constant)) => return Some((ty.clone(), *constant)),
            Some(GlobalState::InProgress) => return Some((Type::Unknown, None)),
            None => {}
        }
        let (at, item) = self.lookup_definition(name)?;
        let (binding, kind) = match &item.kind {
            ItemKind::Param(binding) => (binding, GlobalKind::Param),
            ItemKind::Data(binding) => (binding, GlobalKind::Data),
            ItemKind::Let(binding) => (binding, GlobalKind::Let),
            _ => return None,
        };
        if !self.enter_definition(binding.name.span) {
            return Some((Type::Unknown, None));
        }
        self.globals.insert(name.to_string(), GlobalState::InProgress);
        let (ty, constant) = self.check_global(at, binding, kind);
        self.definition_depth -= 1;
        self.globals.insert(name.to_string(), GlobalState::Done(ty.clone(), constant));
        self.output.globals.insert(name.to_string(), Global { item: at, ty: ty.clone(), constant });
        Some((ty, constant))
    }

    /// Starts checking a definition inside the ones being checked, unless that nests deeper
    /// than [`MAX_DEFINITION_DEPTH`] (reported once): the checker recurses through
    /// definitions, so an unbounded chain could exhaust its stack and take quadratic time.
    fn enter_definition(&mut self, span: Span) -> bool {
        if self.definition_depth >= MAX_DEFINITION_DEPTH {
            self.report_limit(
                Diagnostic::error(ErrorCode::NestingTooDeep, "definitions depend on one another too deeply")
                    .with_primary(span, format!("more than {MAX_DEFINITION_DEPTH} definitions in a chain of uses"))
                    .with_help("shorten the chain, e.g. by computing values in one function with a loop"),
            );
            return false;
        }
        self.definition_depth += 1;
        true
    }

    /// Reports the first problem of size or depth; later ones are its consequences.
    pub(super) fn report_limit(&mut self, diagnostic: Diagnostic) {
        if !self.limit_reported {
            self.limit_reported = true;
            self.report(diagnostic);
        }
    }

    /// Reports a global whose value refers back to itself (called when a lookup finds it in
    /// progress).
    pub(super) fn global_in_progress(&self, name: &str) -> bool {
        matches!(self.globals.get(name), Some(GlobalState::InProgress))
    }

    fn check_global(&mut self, at: ItemRef, binding: &'a Binding, kind: GlobalKind) -> (Type, Option<i64>) {
        let mut body = Body::new(BodyKind::TopLevel);
        let annotation = binding.ty.as_ref().map(|annotation| self.resolve_annotation(annotation));
        let callee = match &binding.value.kind {
            crate::syntax::ast::ExprKind::Call { callee, .. } => Some(callee.name.as_str()),
            _ => None,
        };
        let is_record_literal = matches!(binding.value.kind, crate::syntax::ast::ExprKind::Record(_));
        let value = if kind == GlobalKind::Param && is_record_literal {
            let annotation_span = binding.ty.as_ref().map(|t| t.span);
            let ty = self.check_param_value(
                &mut body,
                &binding.name.name,
                &binding.value,
                annotation.as_ref(),
                annotation_span,
            );
            expr::Checked::of(ty)
        } else if callee == Some("load") {
            self.check_load(&mut body, &binding.value, annotation.as_ref())
        } else if kind != GlobalKind::Let && callee.is_some_and(|name| calls::INITIALISERS.contains(&name)) {
            self.check_initialiser(&mut body, &binding.value, annotation.as_ref(), kind == GlobalKind::Data)
        } else {
            self.check_expr(&mut body, &binding.value)
        };
        self.output.record_top_level(at.file, std::mem::take(&mut body.types), std::mem::take(&mut body.calls));
        let ty = match annotation {
            Some(annotation) => {
                // Reals may fill a `data` item's counts and booleans (`data k: [int; 3] = [3, 5, 2];`):
                // they are checked once, when the data is computed, as observations are.
                let converted = kind == GlobalKind::Data && value.ty.observes(&annotation);
                if !converted {
                    let annotation_span = binding.ty.as_ref().map(|t| t.span);
                    self.expect_fits(&value.ty, &annotation, binding.value.span, annotation_span);
                }
                annotation
            }
            None => value.ty.clone(),
        };
        if kind == GlobalKind::Param && !is_parameter_type(&ty) {
            let span = binding.ty.as_ref().map_or(binding.value.span, |t| t.span);
            self.report(
                Diagnostic::error(
                    ErrorCode::TypeMismatch,
                    format!("a `param` must be real-valued, but `{}` is {ty}", binding.name.name),
                )
                .with_primary(span, format!("this is {ty}"))
                .with_help(
                    "parameters are what training adjusts: give them type `real`, `vec[n]` or `mat[m, n]`, \
                     or a record of those",
                ),
            );
        }
        if kind == GlobalKind::Data && !ty.is_first_order() {
            self.report(
                Diagnostic::error(
                    ErrorCode::TypeMismatch,
                    format!("`data` holds values, but `{}` is {ty}", binding.name.name),
                )
                .with_primary(binding.value.span, format!("this is {ty}"))
                .with_help("use `let` for distributions, families and other non-data values"),
            );
        }
        let constant = if kind == GlobalKind::Param { None } else { value.int };
        (ty, constant)
    }

    /// The initial value of the record parameter `path` (or of one of its fields), a record
    /// literal: each field of the declared type is given once, by a constant or a random
    /// initialiser filling that field's type, and no other field is. Returns the value's type
    /// (the declared one, if any).
    fn check_param_value(
        &mut self,
        body: &mut Body,
        path: &str,
        value: &'a crate::syntax::ast::Expr,
        annotation: Option<&Type>,
        declared: Option<Span>,
    ) -> Type {
        use crate::syntax::ast::ExprKind;
        match (&value.kind, annotation) {
            (ExprKind::Record(fields), None | Some(Type::Record(_))) => {
                let wanted = match annotation {
                    Some(Type::Record(wanted)) => Some(wanted.as_slice()),
                    _ => None,
                };
                let mut found: Vec<crate::types::Field> = Vec::with_capacity(fields.len());
                for field in fields {
                    let name = field.name.name.as_str();
                    if found.iter().any(|f| f.name == name) {
                        self.report(
                            Diagnostic::error(ErrorCode::DuplicateParameter, format!("field `{name}` is given twice"))
                                .with_primary(field.name.span, "repeated field"),
                        );
                        continue;
                    }
                    let field_type = match wanted {
                        Some(wanted) => match wanted.iter().find(|f| f.name == name) {
                            Some(f) => Some(f.ty.clone()),
                            None => {
                                let names: Vec<String> = wanted.iter().map(|f| format!("`{}`", f.name)).collect();
                                let mut diagnostic = Diagnostic::error(
                                    ErrorCode::UnknownField,
                                    format!("`{path}` has no field `{name}`"),
                                )
                                .with_primary(field.name.span, "not a field of the declared type");
                                if let Some(declared) = declared {
                                    diagnostic = diagnostic.with_secondary(declared, "the type declared here");
                                }
                                diagnostic = match closest_name(name, wanted.iter().map(|f| f.name.as_str())) {
                                    Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                                    None if names.is_empty() => diagnostic.with_help("the type has no fields"),
                                    None => diagnostic.with_note(format!("the fields are {}", names.join(", "))),
                                };
                                self.report(diagnostic);
                                found.push(crate::types::Field::new(name.to_string(), Type::Unknown));
                                continue;
                            }
                        },
                        None => None,
                    };
                    let ty = self.check_param_value(
                        body,
                        &format!("{path}.{name}"),
                        &field.value,
                        field_type.as_ref(),
                        declared,
                    );
                    found.push(crate::types::Field::new(name.to_string(), ty));
                }
                for field in wanted.unwrap_or_default() {
                    if found.iter().all(|f| f.name != field.name) {
                        let mut diagnostic = Diagnostic::error(
                            ErrorCode::MissingField,
                            format!("the initial value of `{path}` lacks field `{}`", field.name),
                        )
                        .with_primary(value.span, format!("no `{}` here", field.name));
                        if let Some(declared) = declared {
                            diagnostic = diagnostic
                                .with_secondary(declared, format!("`{}: {}` declared here", field.name, field.ty));
                        }
                        self.report(diagnostic.with_help(format!(
                            "give every field its initial value, e.g. `{}: uniform_init(0.1)`",
                            field.name
                        )));
                    }
                }
                let ty = annotation.cloned().unwrap_or(Type::Record(found));
                body.types.insert(value.id, ty.clone());
                ty
            }
            (ExprKind::Call { callee, .. }, _) if calls::INITIALISERS.contains(&callee.name.as_str()) => {
                self.check_initialiser(body, value, annotation, false).ty
            }
            _ => {
                let ty = self.check_expr(body, value).ty;
                match annotation {
                    Some(annotation) => {
                        self.expect_fits(&ty, annotation, value.span, declared);
                        annotation.clone()
                    }
                    None => ty,
                }
            }
        }
    }

    /// Suggests a close name for a misspelt one among locals, globals and definitions.
    pub(super) fn suggest(&self, name: &str, locals: &[&str], extra: &[&str]) -> Option<String> {
        let definitions = self.definitions.keys().copied();
        closest_name(name, locals.iter().copied().chain(extra.iter().copied()).chain(definitions)).map(str::to_string)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GlobalKind {
    Param,
    Data,
    Let,
}

/// Whether a `param` may have this type: a real, vector or matrix, or a record of them
/// (nested records included), whose parts are the parameters training adjusts.
pub(crate) fn is_parameter_type(ty: &Type) -> bool {
    match ty {
        Type::Real | Type::Vec(_) | Type::Mat(..) | Type::Unknown => true,
        Type::Record(fields) => fields.iter().all(|field| is_parameter_type(&field.ty)),
        _ => false,
    }
}

fn item_name(item: &Item) -> Option<&crate::syntax::ast::Ident> {
    match &item.kind {
        ItemKind::Gen(def) | ItemKind::Fn(def) => Some(&def.name),
        ItemKind::Param(binding) | ItemKind::Data(binding) | ItemKind::Let(binding) => Some(&binding.name),
        ItemKind::Type(_) | ItemKind::Print(_) | ItemKind::Optimize(_) | ItemKind::Error => None,
    }
}

/// Generic definitions are checked once without and once per call with argument types, so
/// the same problem can be found twice: keep the first.
fn deduplicate(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert((d.code, d.span(), d.message.clone())));
}
